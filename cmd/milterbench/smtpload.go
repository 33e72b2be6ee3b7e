package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// smtpConfig is one "smtp" run: SMTP sessions against an MTA, each from
// its client address in the mix, bound as the real source address, so the
// MTA and every filter behind it see that client as they would on the
// Internet.
type smtpConfig struct {
	drivePlan
	// Server4 and Server6 are the MTA's HOST:PORT for IPv4 and IPv6
	// clients; the family the mix does not use may be empty.
	Server4, Server6 string
	// Timeout bounds the dial and the wait for every reply. It must be
	// longer than any deliberate wait of the MTA (postscreen's greet wait).
	Timeout          time.Duration
	Helo, From, Rcpt string
}

// smtpStage is the step of an SMTP session a reply answered.
type smtpStage uint8

const (
	smtpBanner smtpStage = iota
	smtpHelo
	smtpMail
	smtpRcpt
	smtpData
	// smtpEnd is the reply to the message's final dot: 250 means the
	// MTA took responsibility for the message.
	smtpEnd
)

var smtpStageNames = [...]string{"banner", "helo", "mail", "rcpt", "data", "end-of-data"}

func (s smtpStage) String() string { return smtpStageNames[s] }

// smtpOutcome is what one SMTP session produced.
type smtpOutcome struct {
	// Accepted is set when the MTA queued the message (250 after the dot).
	Accepted bool
	// Stage and Code are where the session ended: the refusing reply, or
	// smtpEnd and 250 for an accepted message.
	Stage smtpStage
	Code  int
	// Greeting is the time from the start of the dial to the complete
	// greeting; Final to the reply in Stage.
	Greeting, Final time.Duration
	ErrKind         string
	Err             error
	Aborted         bool
}

// key names the outcome as the report counts it: "accepted" or the stage
// and code of the refusal ("banner 554", "rcpt 550").
func (o *smtpOutcome) key() string {
	if o.Accepted {
		return "accepted"
	}
	return o.Stage.String() + " " + strconv.Itoa(o.Code)
}

// runSMTP runs the configured SMTP sessions. ctx cancels the run: no new
// sessions start and open ones are cut (counted as aborted).
func runSMTP(ctx context.Context, cfg smtpConfig) (*smtpResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("-timeout %s: must be positive", cfg.Timeout)
	}
	if cfg.Server4 == "" && cfg.Mix.usesFamily(false) {
		return nil, errors.New("-server: the mix has IPv4 clients but no IPv4 server address is given")
	}
	if cfg.Server6 == "" && cfg.Mix.usesFamily(true) {
		return nil, errors.New("-server: the mix has IPv6 clients but no IPv6 server address is given")
	}
	return measure(ctx, cfg.drivePlan, func() *smtpResult { return newSMTPResult(cfg) },
		func(i uint64, pk pick) smtpOutcome { return smtpSession(ctx, &cfg, i, pk) }), nil
}

// smtpConn is one client connection with the reply reader.
type smtpConn struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// smtpSession is one SMTP conversation as a sending MTA has it: wait for
// the complete greeting (never talking first: postscreen drops clients
// that do), EHLO, MAIL, RCPT, DATA, a small message, QUIT. At the first
// 4xx or 5xx reply it says QUIT and hangs up, as a well-behaved client
// does.
func smtpSession(ctx context.Context, cfg *smtpConfig, i uint64, pk pick) (out smtpOutcome) {
	fail := func(kind string, err error) smtpOutcome {
		return smtpOutcome{ErrKind: kind, Err: err, Aborted: ctx.Err() != nil}
	}
	server := cfg.Server4
	if pk.Addr.Is6() {
		server = cfg.Server6
	}
	start := cfg.Now()
	d := net.Dialer{Timeout: cfg.Timeout, LocalAddr: &net.TCPAddr{IP: pk.Addr.AsSlice()}}
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := &smtpConn{conn: conn, r: bufio.NewReaderSize(conn, 1024), timeout: cfg.Timeout}

	steps := []struct {
		stage smtpStage
		cmd   string
		want  int
	}{
		{smtpBanner, "", 220},
		{smtpHelo, "EHLO " + cfg.Helo, 250},
		{smtpMail, "MAIL FROM:<" + cfg.From + ">", 250},
		{smtpRcpt, "RCPT TO:<" + cfg.Rcpt + ">", 250},
		{smtpData, "DATA", 354},
		{smtpEnd, smtpMessage(cfg, i, pk.Addr), 250},
	}
	for _, st := range steps {
		code, err := c.exchange(st.cmd)
		if err != nil {
			return fail(st.stage.String(), err)
		}
		now := cfg.Now().Sub(start)
		if st.stage == smtpBanner {
			out.Greeting = now
		}
		out.Stage, out.Code, out.Final = st.stage, code, now
		if code != st.want {
			if code < 400 {
				return fail(st.stage.String(), fmt.Errorf("unexpected reply %d", code))
			}
			break
		}
	}
	out.Accepted = out.Stage == smtpEnd && out.Code == 250
	// The QUIT reply is not waited for beyond the timeout; a server that
	// hangs up first is fine.
	_, _ = c.exchange("QUIT")
	return out
}

// smtpMessage is the DATA part: a minimal message, dot-terminated.
func smtpMessage(cfg *smtpConfig, i uint64, client netip.Addr) string {
	id := strconv.FormatUint(i, 10)
	return "From: <" + cfg.From + ">\r\nTo: <" + cfg.Rcpt + ">\r\nSubject: milterbench " + id +
		"\r\nMessage-ID: <" + id + "." + client.String() + "@milterbench.invalid>\r\n\r\nmilterbench test message\r\n."
}

// exchange sends cmd (none for the greeting) and reads the reply.
func (c *smtpConn) exchange(cmd string) (int, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	if cmd != "" {
		if _, err := c.conn.Write([]byte(cmd + "\r\n")); err != nil {
			return 0, err
		}
	}
	return readReply(c.r)
}

// readReply reads one (possibly multi-line) SMTP reply and returns the code
// of its last line. A continuation line's code is not required to match:
// postscreen sends "220-" and may then end the reply with a 521 of its own.
func readReply(r *bufio.Reader) (int, error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, fmt.Errorf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return 0, fmt.Errorf("malformed reply line %q", line)
		}
		if len(line) == 3 || line[3] == ' ' {
			return code, nil
		}
		if line[3] != '-' {
			return 0, fmt.Errorf("malformed reply line %q", line)
		}
	}
}
