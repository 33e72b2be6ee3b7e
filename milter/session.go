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

// Results that are not rbl decisions: the client was never looked up.
const (
	resultSkip    = "skip"
	resultAllow   = "allow"
	resultBlock   = "block"
	resultUnknown = "unknown_client"
)

// outcome is what was decided about one client.
type outcome struct {
	// result is an rbl.Decision word or one of the result* constants.
	result string
	// verdict is nil when the client was not looked up.
	verdict *rbl.Verdict
}

// refuses reports whether the client is listed (or blocked).
func (o *outcome) refuses() bool { return o.result == "reject" || o.result == resultBlock }

// session is one milter connection's state. go-milter makes a new backend
// after every final reply; rblmilter only sends final replies that end the
// milter's part in the connection, so this state lives as long as it must.
type session struct {
	srv *Server
	gen *generation

	ip   netip.Addr
	port uint16
	// pending delivers the background lookup at StageRcpt.
	pending chan outcome
	out     *outcome
	// authenticated is set from {auth_authen} at MAIL.
	authenticated bool
	// tag is the header value to add at end of message (ActionTag).
	tag string
}

var _ gomilter.Milter = (*session)(nil)

// NeedsTXT reports whether the reply templates show TXT records, so the
// engine fetches them only then (rbl.Config.FetchTXT).
func (p Policy) NeedsTXT() bool {
	return usesTXT(withDefault(p.Reply, DefaultReply)) || usesTXT(p.TempfailReply)
}

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
		s.count(resultUnknown)
		return gomilter.RespAccept, nil
	}
	s.ip, s.port = ip, port

	var o outcome
	o.result, _ = p.Classify(ip)
	switch {
	case o.result != "":
	case p.Stage == StageRcpt:
		// Start now so no time is lost, decide at RCPT TO.
		s.pending = make(chan outcome, 1)
		go func() { s.pending <- s.lookup(ip) }()
		return gomilter.RespContinue, nil
	default:
		o = s.lookup(ip)
	}
	if o.verdict == nil {
		s.logDecision(&o)
	}
	if p.Stage == StageRcpt {
		s.out = &o
		return gomilter.RespContinue, nil
	}
	return s.respond(&o), nil
}

// lookup asks the engine within the connection's budget and logs the
// decision once.
func (s *session) lookup(ip netip.Addr) outcome {
	ctx := newBudget(s.srv.lifetime, s.gen.policy.Timeout)
	defer ctx.release()
	v := s.gen.checker.Check(ctx, ip)
	o := outcome{result: v.Decision.String(), verdict: &v}
	s.logDecision(&o)
	return o
}

// await returns the outcome at RCPT, waiting for the lookup started at
// connect; the lookup's own deadline bounds the wait.
func (s *session) await() *outcome {
	if s.out == nil && s.pending != nil {
		o := <-s.pending
		s.out = &o
	}
	return s.out
}

// respond turns an outcome into the milter reply: ACCEPT for clean clients
// so the MTA drops the milter for the rest of the session.
func (s *session) respond(o *outcome) gomilter.Response {
	p := &s.gen.policy
	switch {
	case o.refuses():
		switch p.Action {
		case ActionReject:
			return s.reply(p.Reply, o)
		case ActionTempfail:
			// Like Postfix's soft_bounce: the listing reply, as a 4xx.
			return s.reply(softBounce(p.Reply), o)
		case ActionTag:
			s.tag = tagValue(o)
			return gomilter.RespContinue
		}
	case o.result == "tempfail":
		// A list with on_error = tempfail failed; tag and log modes
		// promise never to refuse, so only reject/tempfail honour it.
		if p.Action == ActionReject || p.Action == ActionTempfail {
			return s.reply(p.TempfailReply, o)
		}
	}
	if p.Stage == StageRcpt {
		return gomilter.RespContinue
	}
	return gomilter.RespAccept
}

func (s *session) reply(tmpl string, o *outcome) gomilter.Response {
	f := replyFields{ip: s.ip, list: "local block list"}
	if o.verdict != nil {
		f = fieldsFromVerdict(o.verdict)
		f.ip = s.ip
	}
	return gomilter.NewResponseStr(byte(gomilter.ActReplyCode), renderReply(tmpl, f))
}

func (s *session) Helo(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (s *session) MailFrom(_ string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.authenticated = m.Macros["{auth_authen}"] != ""
	return gomilter.RespContinue, nil
}

func (s *session) RcptTo(rcpt string, _ *gomilter.Modifier) (gomilter.Response, error) {
	p := &s.gen.policy
	o := s.await()
	if o == nil {
		return gomilter.RespContinue, nil
	}
	if o.refuses() || o.result == "tempfail" {
		if s.authenticated && p.SkipAuthenticated {
			s.srv.logger.Debug("authenticated client passes", "ip", s.ip, "rcpt", rcpt)
			return gomilter.RespContinue, nil
		}
		if isExempt(rcpt, p.ExemptRecipients) {
			s.srv.logger.Info("exempt recipient passes", "ip", s.ip, "rcpt", rcpt)
			return gomilter.RespContinue, nil
		}
	}
	return s.respond(o), nil
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

func (s *session) Header(string, string, *gomilter.Modifier) (gomilter.Response, error) {
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
// same connection.
func (s *session) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	if s.tag != "" {
		if err := m.AddHeader(s.gen.policy.Header, s.tag); err != nil {
			return nil, err
		}
	}
	return gomilter.RespContinue, nil
}

func (s *session) Abort(*gomilter.Modifier) error { return nil }

// tagValue is the ActionTag header: "listed zen.example=127.0.0.2 score=3".
func tagValue(o *outcome) string {
	if o.verdict == nil {
		return "listed local-block-list"
	}
	return fmt.Sprintf("listed %s score=%d", listsHit(o.verdict), o.verdict.Score)
}

// listsHit renders the listed entries as "name=code+code,name=code".
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

// logDecision writes the one line per decision, and the postscreen-shaped
// line fail2ban's postfix filters already match.
func (s *session) logDecision(o *outcome) {
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
			slog.String("decision", o.result),
			slog.String("action", p.Action.String()),
			slog.String("stage", p.Stage.String()),
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
	if p.PostscreenLog && o.result == "reject" && o.verdict != nil {
		s.srv.logger.Info(fmt.Sprintf("DNSBL rank %d for [%s]:%d", o.verdict.Score, s.ip, s.port))
	}
}

func (s *session) count(result string) {
	if c, ok := s.gen.decisions[result]; ok {
		c.Inc()
		return
	}
	s.srv.metrics.decisions.WithLabelValues(result, s.gen.policy.Action.String(), s.gen.policy.Stage.String()).Inc()
}
