package milter

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/rbl"
)

// session is one milter connection's state. go-milter makes a new backend
// after every final reply (ACCEPT, REJECT, TEMPFAIL, DISCARD; a reply code
// is not one); rblmilter sends only ACCEPT of those, and only once nothing
// more can change the decision, so this state lives as long as it must. A
// backend that saw no Connect therefore answers ACCEPT to everything.
type session struct {
	srv *Server
	gen *generation

	// connected is set by Connect.
	connected bool
	ip        netip.Addr
	port      uint16
	// lookups are the client's lookups; nil when it is not looked up.
	lookups Lookups
	// out is the latest settled decision, for RCPT and end of message;
	// it points at decided.
	out     *outcome
	decided outcome
	verdict rbl.Verdict
	// logged, loggedResult and loggedScore are the decision line written
	// last, so that a decision taken again unchanged (another RCPT, a
	// transaction with the same outcome) is logged once.
	logged       bool
	loggedResult Result
	loggedScore  int
	// authenticated is set from {auth_authen} at MAIL.
	authenticated bool
	// network is the skip, allow or block network the client is in.
	network netip.Prefix
	// authservID is the Authentication-Results authserv-id: the
	// policy's, else the MTA's {j} from the connect macros (go-milter
	// keeps only the latest stage's macros).
	authservID string
	// forged finds the incoming copies of the headers rblmilter writes.
	forged forgeries
	// texts are the TXT records fetched for the replies so far, so that a
	// refusal written again (at every RCPT TO) asks for none of them
	// again, with the cache off too.
	texts []shownText
}

// shownText is a TXT record fetched for a reply: the text of list's
// listing of name ("" for an IP list).
type shownText struct {
	list      *rbl.List
	name, txt string
}

var _ gomilter.Milter = (*session)(nil)

func (s *session) Connect(host string, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	p := &s.gen.policy
	ip, ok := clientAddr(addr, m.Macros, host)
	if !ok {
		// Local submissions (unix, unknown family) and addresses we cannot
		// read: nothing to look up, and refusing would lose mail.
		level := slog.LevelDebug
		if family == "tcp4" || family == "tcp6" {
			level = slog.LevelWarn
		}
		s.srv.logger.Log(s.srv.lifetime, level, "client address not usable; accepting",
			"family", family, "host", host, "client_addr", m.Macros["{client_addr}"])
		s.count(ResultUnknown)
		return gomilter.RespAccept, nil
	}
	s.connected, s.ip, s.port = true, ip, port
	if s.gen.plan.headers {
		s.authservID = s.authServID(m.Macros["j"])
		s.forged = newForgeries(p.Header, s.authservID)
	}

	if class, network, ok := p.Classify(ip); ok {
		s.network = network
		s.decided = outcome{result: class}
		s.out = &s.decided
		s.logDecision(s.out, atConnect)
		return s.respond(nil, s.out, true), nil
	}
	s.lookups = s.gen.checker.Start(ip)
	if s.gen.plan.clientNames {
		verified, ptr := clientNames(host, m.Macros)
		s.lookups.Ask(rbl.CheckClient, verified)
		s.lookups.Ask(rbl.CheckReverseClient, ptr)
	}
	if p.Stage == StageRcpt {
		// The lookups run on; the decision waits for RCPT TO.
		return gomilter.RespContinue, nil
	}
	return s.decide(atConnect, true), nil
}

// authServID is the authserv-id of the Authentication-Results header: the
// policy's, else the MTA's host name j. It is "" (no such header written,
// none deleted) without results_header, or when j is not a usable id.
func (s *session) authServID(j string) string {
	p := &s.gen.policy
	if !p.ResultsHeader {
		return ""
	}
	if p.AuthservID != "" {
		return p.AuthservID
	}
	if err := checkAuthservID(j); err != nil {
		// Once per configuration: it is the MTA's setting, the same
		// for every session.
		s.gen.badHostName.Do(func() {
			s.srv.logger.Warn("MTA host name ({j} macro) is no authserv-id; no Authentication-Results is written until authserv_id is set",
				"j", j, "problem", err.Error())
		})
		return ""
	}
	return j
}

// clientNames returns the client's verified name and its PTR name from
// the connect macros, "" for none. Postfix and Sendmail send the client's
// name as {client_name} and the PTR name as {client_ptr} ("unknown" when
// there is none), and {client_resolve} "OK" only when the name's forward
// lookup gave the client's address back. Without the macros the connect
// host name counts, unless it is the "[address]" an MTA sends for a client
// without a name.
func clientNames(host string, macros map[string]string) (verified, ptr string) {
	usable := func(name string) string {
		if name == "unknown" || strings.HasPrefix(name, "[") {
			return ""
		}
		return name
	}
	name := macros["{client_name}"]
	if name == "" {
		name = host
	}
	name = usable(name)
	verified = name
	if resolve, ok := macros["{client_resolve}"]; ok && resolve != "OK" {
		verified = ""
	}
	if ptr = usable(macros["{client_ptr}"]); ptr == "" {
		ptr = name
	}
	return verified, ptr
}

// decide takes the decision the answers so far allow at stage st (waiting
// for them when wait), and answers: a refusal or ACCEPT once it is
// settled, CONTINUE while later names could still change it.
func (s *session) decide(st smtpStage, wait bool) gomilter.Response {
	var b *budget
	if wait {
		b = newBudget(s.srv.lifetime, s.gen.policy.Timeout)
		defer b.release()
	}
	if !s.settle(st, b) {
		return gomilter.RespContinue
	}
	final := st < atMail || s.lookups.Settled(s.gen.plan.lasting(st))
	return s.respond(b, s.out, final)
}

// settle takes the decision at stage st into s.out and logs it, waiting
// for the answers within budget b, or, with b nil, on the answers that
// are in. It reports false while the decision is still open.
func (s *session) settle(st smtpStage, b *budget) bool {
	open := s.gen.plan.open(st)
	var v rbl.Verdict
	if b != nil {
		v = s.lookups.Verdict(b, open)
	} else {
		// Most HELOs leave the decision open (a sender is still to
		// come): Settled says so without building a verdict's results.
		if !s.lookups.Settled(open) {
			return false
		}
		v = s.lookups.Peek(open)
	}
	if !v.Settled {
		return false
	}
	s.verdict = v
	s.decided = outcome{result: ResultOf(v.Decision), verdict: &s.verdict}
	s.out = &s.decided
	s.logDecision(s.out, st)
	return true
}

// respond turns an outcome into the milter reply: a refusal, or, for a
// client that is let through, ACCEPT when final (nothing can change the
// decision any more: the MTA drops the milter for the rest of the session)
// and CONTINUE otherwise. b is the budget of the decision, which a TXT
// record the refusal shows may use what is left of; nil gives it a budget
// of its own.
func (s *session) respond(b *budget, o *outcome, final bool) gomilter.Response {
	p := &s.gen.policy
	switch {
	case o.listed():
		switch p.Action {
		case ActionReject:
			return s.reply(b, p.Reply, o, false)
		case ActionTempfail:
			// Like Postfix's soft_bounce: the listing reply, as a 4xx.
			return s.reply(b, p.Reply, o, true)
		case ActionTag:
			// The header is added at end of message.
			return gomilter.RespContinue
		}
	case o.result == ResultTempfail:
		// A list with on_error = tempfail failed; tag and log modes
		// promise never to refuse, so only reject/tempfail honour it.
		if p.Action == ActionReject || p.Action == ActionTempfail {
			return s.reply(b, p.TempfailReply, o, false)
		}
	}
	if p.Stage == StageRcpt || !final || o.stamped(p) {
		// A stamped client's messages need the milter at end of
		// message.
		return gomilter.RespContinue
	}
	return gomilter.RespAccept
}

// reply renders the refusal: the template of the first counted list
// entry that has its own, else global; soft turns it into its 4xx form.
// The TXT record a template shows is fetched now, within budget b (nil:
// the policy's timeout from now), not with the answers: the decision
// never waits for a text, and the lists whose text is not shown are not
// asked for one.
func (s *session) reply(b *budget, global string, o *outcome, soft bool) gomilter.Response {
	tmpl := global
	f := replyFields{ip: s.ip, name: s.ip.String(), list: "local block list"}
	if o.verdict != nil {
		var lead int
		tmpl, lead = listTemplate(o.verdict, s.gen.policy.ListReplies, global)
		txt := fetchedTXT
		if usesTXT(tmpl) && s.lookups != nil {
			if b == nil {
				b = newBudget(s.srv.lifetime, s.gen.policy.Timeout)
				defer b.release()
			}
			txt = func(r *rbl.Result) string { return s.shownTXT(b, r) }
		}
		f = fieldsFromVerdict(o.verdict, lead, txt)
	}
	if soft {
		tmpl = softBounce(tmpl)
	}
	return gomilter.NewResponseStr(byte(gomilter.ActReplyCode), renderReply(tmpl, f))
}

// shownTXT returns the TXT record of a result a reply shows: fetched by
// the lookups (within b) the first time, remembered after that.
func (s *session) shownTXT(b *budget, r *rbl.Result) string {
	if r.Outcome != rbl.Listed || r.TXT != "" {
		return r.TXT
	}
	for _, t := range s.texts {
		if t.list == r.List && t.name == r.Name {
			return t.txt
		}
	}
	txt := s.lookups.TXT(b, r)
	s.texts = append(s.texts, shownText{list: r.List, name: r.Name, txt: txt})
	return txt
}

// Helo asks the HELO lists. Their answers are taken at once when they are
// in (cached), else at MAIL: the EHLO reply does not wait for DNS.
func (s *session) Helo(name string, _ *gomilter.Modifier) (gomilter.Response, error) {
	if !s.connected {
		return gomilter.RespAccept, nil
	}
	if s.lookups == nil || !s.gen.plan.checks.Has(rbl.CheckHelo) {
		return gomilter.RespContinue, nil
	}
	s.lookups.Ask(rbl.CheckHelo, name)
	if s.gen.policy.Stage == StageRcpt {
		return gomilter.RespContinue, nil
	}
	return s.decide(atHelo, false), nil
}

// MailFrom asks the sender lists, and at stage = "connect" decides for
// the transaction, waiting for the HELO and sender answers.
func (s *session) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	if !s.connected {
		return gomilter.RespAccept, nil
	}
	s.authenticated = m.Macros["{auth_authen}"] != ""
	s.forged.reset()
	if s.lookups == nil {
		return gomilter.RespContinue, nil
	}
	if s.gen.policy.Stage == StageRcpt {
		// Only the refusal at RCPT can wait for the login; at stage
		// connect every client counts as unauthenticated.
		s.lookups.Authenticated(s.authenticated)
	}
	if s.gen.plan.checks.Has(rbl.CheckSender) {
		s.lookups.Ask(rbl.CheckSender, from)
	}
	if s.gen.policy.Stage == StageRcpt {
		return gomilter.RespContinue, nil
	}
	return s.decide(atMail, true), nil
}

// RcptTo delivers the decision at stage = "rcpt", waiting for every
// answer; the reply's TXT record is fetched within the same budget.
func (s *session) RcptTo(rcpt string, _ *gomilter.Modifier) (gomilter.Response, error) {
	p := &s.gen.policy
	var b *budget
	if s.lookups != nil {
		b = newBudget(s.srv.lifetime, p.Timeout)
		defer b.release()
		s.settle(atRcpt, b)
	}
	o := s.out
	if o == nil {
		return gomilter.RespContinue, nil
	}
	if o.result.Refuses() {
		// The lists judged the client by its login already (their
		// sessions); skip_authenticated keeps the block networks off
		// authenticated clients too.
		if s.authenticated && p.SkipAuthenticated && o.result == ResultBlock {
			s.srv.logger.Debug("authenticated client passes", "ip", s.ip, "rcpt", rcpt)
			return gomilter.RespContinue, nil
		}
		if isExempt(rcpt, p.ExemptRecipients) {
			s.srv.logger.Info("exempt recipient passes", "ip", s.ip, "rcpt", rcpt)
			return gomilter.RespContinue, nil
		}
	}
	return s.respond(b, o, false), nil
}

// isExempt matches a recipient against exempt_recipients: a bare local
// part matches it at any domain, a full address only itself.
func isExempt(rcpt string, exempt []string) bool {
	rcpt = strings.ToLower(strings.Trim(rcpt, "<> "))
	local, _, _ := strings.Cut(rcpt, "@")
	for _, e := range exempt {
		e = strings.ToLower(e)
		if e == rcpt || (!strings.Contains(e, "@") && e == local) {
			return true
		}
	}
	return false
}

// Header notes the copies of rblmilter's own headers among the message's;
// the MTA sends headers only when a message may get the results header.
func (s *session) Header(name, value string, _ *gomilter.Modifier) (gomilter.Response, error) {
	s.forged.see(name, value)
	return gomilter.RespContinue, nil
}

func (s *session) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) BodyChunk([]byte, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

// Body is the end of a message. CONTINUE there accepts the message but,
// unlike ACCEPT, keeps this session's state for the next message on the
// same connection. A stamped client's message gets the results header.
func (s *session) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	defer s.forged.reset()
	if s.out != nil && s.out.stamped(&s.gen.policy) {
		if err := s.stamp(m, s.out); err != nil {
			return nil, err
		}
	}
	return gomilter.RespContinue, nil
}

// stamp deletes the message's forged copies of rblmilter's headers, last
// first, then adds the RFC 8904 Authentication-Results at the top (when
// an allowlist listed the client) and the results header.
func (s *session) stamp(m *gomilter.Modifier, o *outcome) error {
	p := &s.gen.policy
	for _, h := range s.forged.deletions() {
		if err := m.ChangeHeader(h.index, h.name, ""); err != nil {
			return err
		}
	}
	if o.verdict == nil {
		return m.AddHeader(p.Header, networkResultsValue(p.Header, s.gen.levels, o.result, s.network))
	}
	if s.authservID != "" {
		if ar := authResultsValue(s.authservID, o.verdict); ar != "" {
			if err := m.InsertHeader(0, authResultsHeader, ar); err != nil {
				return err
			}
		}
	}
	return m.AddHeader(p.Header, resultsValue(p.Header, s.gen.levels, o.verdict))
}

// Abort ends the message without end of message (RSET, a dropped
// connection): the next one counts its headers anew.
func (s *session) Abort(*gomilter.Modifier) error {
	s.forged.reset()
	return nil
}

// listsHit renders the listed entries as "name=code+code,name=code", a
// domain list's with the name it listed: "DBL=127.0.1.2(helo=example.com)".
func listsHit(v *rbl.Verdict) string {
	var b strings.Builder
	for i := range v.Results {
		r := &v.Results[i]
		if r.Outcome != rbl.Listed {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.List.String())
		for j, c := range r.Codes {
			if j == 0 {
				b.WriteByte('=')
			} else {
				b.WriteByte('+')
			}
			b.WriteString(c.String())
		}
		if r.Name != "" {
			// A domain list: which of the client's names it listed.
			b.WriteByte('(')
			b.WriteString(r.Check.String())
			b.WriteByte('=')
			b.WriteString(r.Name)
			b.WriteByte(')')
		}
	}
	return b.String()
}

// listProblems renders entries that did not answer usefully, so an admin
// sees failing lists in the decision line: "name:timeout,name:refused".
func listProblems(v *rbl.Verdict) string {
	var b strings.Builder
	for i := range v.Results {
		r := &v.Results[i]
		switch r.Outcome {
		case rbl.Refused, rbl.Bogus, rbl.Error, rbl.Timeout, rbl.OverBudget:
		default:
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.List.String())
		b.WriteByte(':')
		b.WriteString(r.Outcome.String())
	}
	return b.String()
}

// logDecision writes the one line per decision taken at stage st, and the
// postscreen-shaped line fail2ban's postfix filters already match. A
// decision taken again unchanged (at the next RCPT, or a transaction with
// the same outcome) is not written again.
func (s *session) logDecision(o *outcome, st smtpStage) {
	score := 0
	if o.verdict != nil {
		score = o.verdict.Score
	}
	if s.logged && s.loggedResult == o.result && s.loggedScore == score {
		return
	}
	s.logged, s.loggedResult, s.loggedScore = true, o.result, score
	p := &s.gen.policy
	s.count(o.result)
	ctx, logger := s.srv.lifetime, s.srv.logger
	if logger.Enabled(ctx, slog.LevelInfo) {
		// The record is made here, not by Logger.LogAttrs, which would
		// also look up the caller (runtime.Callers) for a source
		// position no rblmilter handler prints. BenchmarkConnectCacheHit
		// shows the difference (docs/performance.md).
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "decision", 0)
		r.AddAttrs(
			slog.String("ip", s.ip.String()),
			slog.String("decision", o.result.String()),
			slog.String("action", p.Action.String()),
			slog.String("stage", p.Stage.String()),
			slog.String("at", st.String()),
		)
		if v := o.verdict; v != nil {
			cached := 0
			for i := range v.Results {
				if v.Results[i].Cached {
					cached++
				}
			}
			r.AddAttrs(
				slog.Int("score", v.Score),
				slog.String("lists", listsHit(v)),
				slog.Bool("early", v.Early),
				slog.Duration("duration", v.Duration),
				slog.Int("cached", cached),
			)
			if pr := listProblems(v); pr != "" {
				r.AddAttrs(slog.String("problems", pr))
			}
		}
		_ = logger.Handler().Handle(ctx, r)
	}
	if p.PostscreenLog && o.result == ResultReject && o.verdict != nil {
		s.srv.logger.Info(fmt.Sprintf("DNSBL rank %d for [%s]:%d", o.verdict.Score, s.ip, s.port))
	}
}

func (s *session) count(r Result) {
	s.gen.decisions[r].Inc()
}
