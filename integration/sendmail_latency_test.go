//go:build integration && linux

package integration

import (
	"context"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSendmailMilterLatency guards against the Sendmail stall of issue #6:
// before each milter command Sendmail writes the macro packet and the
// command as two small segments; with Nagle on Sendmail's side and delayed
// ACK on the milter's, the command waits for the milter's delayed-ACK timer
// at every milter step (docs/performance.md has the measured stall).
// rblmilter re-arms TCP_QUICKACK so that the ACK goes out at once.
//
// One private Sendmail has three listeners: one without a milter (its only
// filter, contrib's at port 8890, is not running, so Sendmail fails open at
// once), one through rblmilter as shipped, and one through rblmilter with
// the re-arm switched off (RBLMILTER_TEST_NO_QUICKACK). rblmilter decides
// at the rcpt stage, so Sendmail talks to it at connect, MAIL, RCPT and end
// of message. The same client sends sessions to the three in turn, and the
// test compares within this run, never against a fixed time:
//   - through rblmilter a session must take less than 4x the session
//     without a milter, and no step (greeting, MAIL, RCPT, end of message)
//     may be 30 ms slower than without a milter, in the median;
//   - without the re-arm the stall must show, or this test could not
//     catch it coming back.
func TestSendmailMilterLatency(t *testing.T) {
	lab := newSendmailLab(t, cleanIPv4)
	ns, dir, dns := lab.ns, lab.dir, lab.dns
	const quickPort, noQuickPort = 8891, 8892
	daemon := func(name string, port, metricsPort int, wrap ...string) {
		startRblmilter(t, dir, name, milterOptions{
			Listen: fmt.Sprintf("inet:%d@127.0.0.1", port), Stage: "rcpt", Action: "reject", DNS: dns.addr,
			Metrics: hostPort("127.0.0.1", metricsPort),
		}, ns, append(ns.exec(), wrap...)...)
	}
	daemon("rblmilter-quickack", quickPort, 9891)
	// The daemon reads the switch from its environment (cmd/rblmilter/run.go).
	daemon("rblmilter-no-quickack", noQuickPort, 9892, requireCommands(t, "env")["env"], "RBLMILTER_TEST_NO_QUICKACK=1")

	const smtpBare, smtpQuick, smtpNoQuick = 2525, 2526, 2527
	startSendmail(t, ns, sharedDir(t),
		[]sendmailDaemon{
			{Name: "bare", Port: smtpBare},
			{Name: "quick", Port: smtpQuick, Filter: "rblmilter_quick"},
			{Name: "noquick", Port: smtpNoQuick, Filter: "rblmilter_noquick"},
		},
		[]sendmailFilter{{Name: "rblmilter_quick", Port: quickPort}, {Name: "rblmilter_noquick", Port: noQuickPort}},
	)

	kinds := []struct {
		name string
		port int
	}{{"without milter", smtpBare}, {"rblmilter", smtpQuick}, {"rblmilter without TCP_QUICKACK", smtpNoQuick}}
	// One session each first: Sendmail and rblmilter warm up, and the
	// client's lookups land in rblmilter's cache.
	for _, k := range kinds {
		if _, err := timedSMTP(ns, cleanIPv4, hostPort(serverIPv4, k.port)); err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
	}
	const rounds = 7
	runs := make([][]smtpTiming, len(kinds))
	for range rounds {
		for i, k := range kinds {
			tm, err := timedSMTP(ns, cleanIPv4, hostPort(serverIPv4, k.port))
			if err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			runs[i] = append(runs[i], tm)
		}
	}
	med := make([]smtpTiming, len(kinds))
	for i, k := range kinds {
		med[i] = medianTiming(runs[i])
		t.Logf("%-32s median of %d: %s", k.name, rounds, med[i])
	}
	base, quick, noQuick := med[0], med[1], med[2]

	if ratio := float64(quick.total) / float64(base.total); ratio >= 4 {
		t.Errorf("a session through rblmilter took %.1fx the session without a milter (%s vs %s), want < 4x", ratio, quick.total, base.total)
	}
	if s := stalls(base, quick); len(s) > 0 {
		t.Errorf("milter steps through rblmilter stall: %s", strings.Join(s, ", "))
	}
	if s := stalls(base, noQuick); len(s) == 0 {
		t.Errorf("without the TCP_QUICKACK re-arm no step stalled (%s vs %s without a milter): this test could not catch the stall coming back", noQuick, base)
	} else {
		t.Logf("without the re-arm, as expected: %s", strings.Join(s, ", "))
	}
}

// smtpSteps are the timed steps of a session, in order.
var smtpSteps = []string{"greeting", "EHLO", "MAIL", "RCPT", "DATA", "message", "QUIT"}

// smtpTiming is how long one session took, per step (from writing the
// command, or dialing, to the end of the reply) and in all.
type smtpTiming struct {
	steps []time.Duration
	total time.Duration
}

func (s smtpTiming) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "total %s:", s.total.Round(100*time.Microsecond))
	for i, d := range s.steps {
		fmt.Fprintf(&b, " %s %s", smtpSteps[i], d.Round(100*time.Microsecond))
	}
	return b.String()
}

// timedSMTP sends one message from client to server and times each step;
// any reply other than the expected success is an error.
func timedSMTP(d dialer, client, server string) (smtpTiming, error) {
	var tm smtpTiming
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	conn, err := d.dial(ctx, "tcp", client, server)
	if err != nil {
		return tm, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return tm, err
	}
	c := textproto.NewConn(conn)
	step := func(want int, send func() error) error {
		t0 := time.Now()
		if send != nil {
			if err := send(); err != nil {
				return err
			}
		} else {
			t0 = start
		}
		code, msg, err := c.ReadResponse(want)
		if err != nil {
			return fmt.Errorf("after %s: %d %s: %w", strings.Join(smtpSteps[:len(tm.steps)+1], ", "), code, msg, err)
		}
		tm.steps = append(tm.steps, time.Since(t0))
		return nil
	}
	line := func(format string, args ...any) func() error {
		return func() error { return c.PrintfLine(format, args...) }
	}
	token := newToken()
	for _, s := range []struct {
		want int
		send func() error
	}{
		{220, nil},
		{250, line("EHLO client.test.invalid")},
		{250, line("MAIL FROM:<sender@client.test.invalid>")},
		{250, line("RCPT TO:<user@%s>", mailDomain)},
		{354, line("DATA")},
		{250, func() error {
			w := c.DotWriter()
			fmt.Fprintf(w, "From: <sender@client.test.invalid>\r\nTo: <user@%s>\r\nSubject: latency %s\r\n\r\nTiming test.\r\n", mailDomain, token)
			return w.Close()
		}},
		{221, line("QUIT")},
	} {
		if err := step(s.want, s.send); err != nil {
			return tm, err
		}
	}
	tm.total = time.Since(start)
	return tm, nil
}

// medianTiming is the per-step and total median of runs.
func medianTiming(runs []smtpTiming) smtpTiming {
	median := func(get func(smtpTiming) time.Duration) time.Duration {
		v := make([]time.Duration, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := smtpTiming{total: median(func(r smtpTiming) time.Duration { return r.total })}
	for i := range smtpSteps {
		m.steps = append(m.steps, median(func(r smtpTiming) time.Duration { return r.steps[i] }))
	}
	return m
}

// stallMargin is how much slower than without a milter a step must be to
// count as stalled: below Linux's shortest delayed-ACK timeout
// (TCP_DELACK_MIN, 40 ms), far above the milter's own work on loopback.
const stallMargin = 30 * time.Millisecond

// stalls names the steps of got that are stallMargin slower than base.
func stalls(base, got smtpTiming) []string {
	var out []string
	for i, name := range smtpSteps {
		if extra := got.steps[i] - base.steps[i]; extra >= stallMargin {
			out = append(out, fmt.Sprintf("%s +%s", name, extra.Round(time.Millisecond)))
		}
	}
	return out
}
