package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// stage is how far a session goes while the milter keeps answering
// continue: Postfix only sends HELO, MAIL and RCPT after a continue.
type stage uint8

const (
	stageConnect stage = iota
	stageHelo
	stageMail
	stageRcpt
	// stageEOM sends a message: its header fields, the end of headers, a
	// body chunk and the end of message, each only if the milter did not
	// ask to skip it.
	stageEOM
)

var stageNames = [...]string{"connect", "helo", "mail", "rcpt", "eom"}

func (s stage) String() string { return stageNames[s] }

func parseStage(s string) (stage, error) {
	for i, n := range stageNames {
		if strings.EqualFold(s, n) {
			return stage(i), nil
		}
	}
	return 0, fmt.Errorf("-stage %q: want connect, helo, mail, rcpt or eom", s)
}

// benchHeaders are the header fields of the message sent at stageEOM, as
// a message arriving from the Internet has them after the MTA's own
// Received.
var benchHeaders = [][2]string{
	{"Received", "from client.bench.test (client.bench.test [198.51.100.1])\n\tby mx.bench.test with ESMTP id BENCH"},
	{"From", "<sender@bench.test>"},
	{"To", "<user@bench.test>"},
	{"Subject", "milterbench"},
	{"Date", "Tue, 1 Dec 2026 12:00:00 +0000"},
	{"Message-ID", "<bench@bench.test>"},
	{"MIME-Version", "1.0"},
	{"Content-Type", "text/plain; charset=us-ascii"},
}

// benchBody is the message body sent at stageEOM.
var benchBody = []byte("A milterbench test message.\r\n")

// loadConfig is one load run.
type loadConfig struct {
	drivePlan
	Target socketspec.Spec
	Stage  stage
	// Timeout bounds the dial and every milter read and write, as
	// Postfix's milter_connect_timeout and milter_command_timeout do.
	Timeout time.Duration
	// Hostname is the MTA's name, sent as the j and {daemon_name} macros.
	Hostname         string
	Helo, From, Rcpt string
	// Auth sends SASL login macros at MAIL, as for an authenticated
	// submission client.
	Auth bool
	// ActionMask and ProtocolMask are offered at negotiation. go-milter's
	// client only downgrades to a version-2 milter (such as a go-milter
	// server) when the masks fit version 2 (actions 0x3f, protocol 0x7f).
	ActionMask   milter.OptAction
	ProtocolMask milter.OptProtocol
	// Headers are sent at stageEOM after benchHeaders ("Name: value"
	// already split), e.g. a forged copy of the header the milter writes.
	Headers [][2]string
}

// Postfix-like defaults for the fields an admin rarely changes.
const (
	defaultActionMask   = milter.OptAddHeader | milter.OptChangeBody | milter.OptAddRcpt | milter.OptRemoveRcpt | milter.OptChangeHeader | milter.OptQuarantine
	defaultProtocolMask = milter.OptNoConnect | milter.OptNoHelo | milter.OptNoMailFrom | milter.OptNoRcptTo | milter.OptNoBody | milter.OptNoHeaders | milter.OptNoEOH
	// daemonAddr is the MTA's own address in {daemon_addr} (TEST-NET-2).
	daemonAddr = "198.51.100.25"
)

// quitPacket is SMFIC_QUIT, written by hand because go-milter's
// ClientSession.Close also sends an ABORT that Postfix does not send.
var quitPacket = []byte{0, 0, 0, 1, byte(milter.CodeQuit)}

// outcome is what one session produced.
type outcome struct {
	Verdict  string // accept, continue, reject, tempfail, discard, "reply 554", ...
	At       stage  // where the verdict came from
	Total    time.Duration
	Decision time.Duration // macros+CONNECT written to verdict read
	ErrKind  string
	Err      error
	Aborted  bool // interrupted by the caller, not a failure of the target
	// Mods counts the modifications asked for at end of message, by kind
	// ("add header", "change header", ...).
	Mods map[string]uint64
}

// loadRunner drives sessions; its fields are read-only during a run.
type loadRunner struct {
	cfg    loadConfig
	dialer *net.Dialer
}

// runLoad runs the configured sessions against the target. ctx cancels the
// run: no new sessions start and open ones are cut (counted as aborted).
func runLoad(ctx context.Context, cfg loadConfig) (*loadResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &loadRunner{cfg: cfg, dialer: &net.Dialer{Timeout: cfg.Timeout}}
	return measure(ctx, cfg.drivePlan, func() *loadResult { return newLoadResult(cfg) },
		func(i uint64, pk pick) outcome { return r.session(ctx, i, pk) }), nil
}

// sessionDialer remembers the connection go-milter dials, because the
// library neither closes it when negotiation fails nor exposes it, and the
// session must close it the way Postfix does.
type sessionDialer struct {
	ctx    context.Context
	dialer *net.Dialer
	conn   net.Conn
	stop   func() bool
}

func (d *sessionDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := d.dialer.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.conn = conn
	d.stop = context.AfterFunc(d.ctx, func() { conn.Close() })
	return conn, nil
}

// session is one MTA-side milter conversation for client address pk, as
// Postfix's smtpd has it: a fresh connection, negotiation, connect macros
// and CONNECT, then HELO/MAIL/RCPT while the milter says continue, then
// QUIT after continue or a plain close after a final verdict.
func (r *loadRunner) session(ctx context.Context, i uint64, pk pick) (out outcome) {
	cfg := &r.cfg
	start := cfg.Now()
	d := &sessionDialer{ctx: ctx, dialer: r.dialer}
	client := milter.NewClientWithOptions(cfg.Target.Network, cfg.Target.Address, milter.ClientOptions{
		Dialer:       d,
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		ActionMask:   cfg.ActionMask,
		ProtocolMask: cfg.ProtocolMask,
	})
	fail := func(kind string, err error) outcome {
		return outcome{ErrKind: kind, Err: err, Aborted: ctx.Err() != nil}
	}
	s, err := client.Session()
	if d.conn != nil {
		defer d.conn.Close()
		defer d.stop()
	}
	if err != nil {
		if d.conn == nil {
			return fail("dial", err)
		}
		return fail("negotiate", err)
	}

	ip := pk.Addr.String()
	port := uint16(1024 + i%64000)
	family := milter.FamilyInet
	if pk.Addr.Is6() {
		family = milter.FamilyInet6
	}
	decStart := cfg.Now()
	if err := s.Macros(milter.CodeConn,
		"j", cfg.Hostname,
		"{daemon_name}", cfg.Hostname,
		"{daemon_addr}", daemonAddr,
		"v", "milterbench",
		"_", "unknown ["+ip+"]",
		"{client_addr}", ip,
		"{client_port}", strconv.Itoa(int(port)),
		"{client_name}", "unknown",
		"{client_ptr}", "unknown",
	); err != nil {
		return fail("connect", err)
	}
	// Postfix names a client without verified reverse DNS "[ip]".
	act, err := s.Conn("["+ip+"]", family, port, ip)
	if err != nil {
		return fail("connect", err)
	}
	out.Decision = cfg.Now().Sub(decStart)
	out.At = stageConnect

	for st := stageHelo; st <= cfg.Stage && act.Code == milter.ActContinue; st++ {
		out.At = st
		switch st {
		case stageHelo:
			act, err = s.Helo(cfg.Helo)
		case stageMail:
			kv := []string{"i", "BENCH" + strconv.FormatUint(i, 16), "{mail_addr}", cfg.From, "{mail_mailer}", "smtp"}
			if cfg.Auth {
				kv = append(kv, "{auth_type}", "PLAIN", "{auth_authen}", "bench", "{auth_author}", "")
			}
			if err = s.Macros(milter.CodeMail, kv...); err == nil {
				act, err = s.Mail(cfg.From, nil)
			}
		case stageRcpt:
			if err = s.Macros(milter.CodeRcpt, "{rcpt_addr}", cfg.Rcpt, "{rcpt_mailer}", "local"); err == nil {
				act, err = s.Rcpt(cfg.Rcpt, nil)
			}
		case stageEOM:
			act, out.Mods, err = message(s, cfg.Headers)
		}
		if err != nil {
			return fail(st.String(), err)
		}
	}
	out.Total = cfg.Now().Sub(start)
	out.Verdict = verdictName(act)
	if act.Code == milter.ActContinue {
		_ = d.conn.SetWriteDeadline(cfg.Now().Add(cfg.Timeout))
		_, _ = d.conn.Write(quitPacket)
	}
	return out
}

// message sends one message as Postfix does after DATA: each header field
// (the library skips what the milter negotiated away), the end of
// headers, the body and the end of message, stopping at a verdict other
// than continue. It returns the final verdict and the modifications asked
// for at end of message.
func message(s *milter.ClientSession, extra [][2]string) (*milter.Action, map[string]uint64, error) {
	for _, h := range append(benchHeaders[:len(benchHeaders):len(benchHeaders)], extra...) {
		act, err := s.HeaderField(h[0], h[1])
		if err != nil || act.Code != milter.ActContinue {
			return act, nil, err
		}
	}
	act, err := s.HeaderEnd()
	if err != nil || act.Code != milter.ActContinue {
		return act, nil, err
	}
	if act, err = s.BodyChunk(benchBody); err != nil || act.Code != milter.ActContinue && act.Code != milter.ActSkip {
		return act, nil, err
	}
	mods, act, err := s.End()
	if err != nil {
		return nil, nil, err
	}
	var kinds map[string]uint64
	for _, m := range mods {
		if kinds == nil {
			kinds = map[string]uint64{}
		}
		kinds[modName(m)]++
	}
	return act, kinds, nil
}

// modNames and verdictNames are the words the report counts
// modifications and replies by; a code not here is counted as "code 'x'".
var (
	modNames = map[milter.ModifyActCode]string{
		milter.ActAddHeader: "add header", milter.ActInsertHeader: "insert header", milter.ActChangeHeader: "change header",
		milter.ActAddRcpt: "add rcpt", milter.ActDelRcpt: "delete rcpt", milter.ActReplBody: "replace body",
		milter.ActChangeFrom: "change from", milter.ActQuarantine: "quarantine",
	}
	verdictNames = map[milter.ActionCode]string{
		milter.ActAccept: "accept", milter.ActContinue: "continue", milter.ActReject: "reject",
		milter.ActTempFail: "tempfail", milter.ActDiscard: "discard",
	}
)

// modName names a modification the way the report counts it; a header
// change with an empty value deletes the header.
func modName(m milter.ModifyAction) string {
	if m.Code == milter.ActChangeHeader && m.HeaderValue == "" {
		return "delete header"
	}
	if name, ok := modNames[m.Code]; ok {
		return name
	}
	return "code " + strconv.QuoteRune(rune(m.Code))
}

// verdictName names a milter reply the way the report counts it.
func verdictName(act *milter.Action) string {
	if act.Code == milter.ActReplyCode {
		return "reply " + strconv.Itoa(act.SMTPCode)
	}
	if name, ok := verdictNames[act.Code]; ok {
		return name
	}
	return "code " + strconv.QuoteRune(rune(act.Code))
}

// errKindOf adds "timeout" to the stage name when a deadline fired, since
// a slow milter and a broken one call for different fixes.
func errKindOf(kind string, err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return kind + " timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return kind + " timeout"
	}
	return kind
}
