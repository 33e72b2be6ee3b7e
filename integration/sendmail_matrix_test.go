//go:build integration && linux

package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestSendmail runs a private Sendmail (from Debian's packages, with the
// milter lines of contrib/sendmail/rblmilter.mc) in a network namespace of
// its own, with rbldnsd and three rblmilter daemons (connect stage, rcpt
// stage, tag action) beside it. Clients connect from real documentation
// range source addresses on the namespace's loopback, IPv4 and IPv6, so
// Sendmail hands rblmilter the addresses as it would in production,
// including its IPv6:2001:db8:0:0:0:0:0:66 form.
func TestSendmail(t *testing.T) {
	clients := []string{listedIPv4, cleanIPv4, allowedIPv4, aggListedIPv4, aggCleanIPv4, listedIPv6, cleanIPv6}
	lab := newSendmailLab(t, clients...)
	ns, dir, dns := lab.ns, lab.dir, lab.dns
	// Inside the namespace every port is free: fixed ones, and contrib's
	// milter address verbatim.
	daemon := func(name string, port, metricsPort int, stage, action string) *rblmilterDaemon {
		return startRblmilter(t, dir, name, milterOptions{
			Listen: fmt.Sprintf("inet:%d@127.0.0.1", port), Stage: stage, Action: action, DNS: dns.addr,
			Metrics: hostPort("127.0.0.1", metricsPort),
		}, ns, ns.exec()...)
	}
	connectD := daemon("rblmilter-connect", contribMilterPort, 9890, "connect", "reject")
	rcptD := daemon("rblmilter-rcpt", 8891, 9891, "rcpt", "reject")
	tagD := daemon("rblmilter-tag", 8892, 9892, "connect", "tag")

	const smtpConnect, smtpRcpt, smtpTag = 2525, 2526, 2527
	sm := startSendmail(t, ns, sharedDir(t),
		[]sendmailDaemon{
			{Name: "connect", Port: smtpConnect},
			{Name: "rcpt", Port: smtpRcpt, Filter: "rblmilter_rcpt"},
			{Name: "tag", Port: smtpTag, Filter: "rblmilter_tag"},
		},
		[]sendmailFilter{{Name: "rblmilter_rcpt", Port: 8891}, {Name: "rblmilter_tag", Port: 8892}},
		clients...,
	)

	send := func(t *testing.T, port int, client string, rcpts ...string) *transcript {
		server := serverIPv4
		if strings.Contains(client, ":") {
			server = serverIPv6
		}
		return sendMail(t, ns, session{Local: client, Server: hostPort(server, port), Rcpts: rcpts})
	}
	// Sendmail does not show a connect-stage reply text to the client: it
	// greets with its own refusal and then rejects every command.
	refusal := "554 " + mailDomain + " ESMTP not accepting messages"
	const commandRejected = "550 5.0.0 Command rejected"

	expectConnectReject := func(t *testing.T, d *rblmilterDaemon, port int, ip string, l listing) {
		n := d.countDecisions(t, ip)
		tr := send(t, port, ip)
		if got := tr.Greeting.String(); got != refusal {
			t.Errorf("greeting = %q, want %q", got, refusal)
		}
		if got := tr.Mail.String(); got != commandRejected {
			t.Errorf("MAIL FROM reply = %q, want %q", got, commandRejected)
		}
		if len(tr.Rcpts) != 0 || tr.Data.Code != 0 {
			t.Errorf("session went on after the rejected MAIL FROM:\n%s", tr)
		}
		expectDecision(t, d.waitDecision(t, ip, n+1), "reject", l.Log)
		// Sendmail got rblmilter's reply text; it only logs it.
		sm.waitSyslog(t, fmt.Sprintf("action=connect, reject=554 5.7.1 Service unavailable; Client host [%s] blocked using %s", ip, l.Name))
		sm.waitSyslog(t, fmt.Sprintf("Milter: connect: host=%s, addr=%s, rejecting commands", clientName(ip), sendmailAddr(ip)))
	}
	expectAccepted := func(t *testing.T, d *rblmilterDaemon, port int, ip, decision string) *transcript {
		return checkAccepted(t, d, sm.mailDir, ip, decision, func() *transcript { return send(t, port, ip) })
	}

	t.Run("connect stage", func(t *testing.T) {
		// Sendmail hands the milter IPv6 clients as IPv6:2001:db8:0:0:0:0:0:66
		// (see its expectConnectReject's log check); rblmilter decides on
		// 2001:db8::66.
		// The aggregate list, whose data lists canary ranges, has been
		// probed several times and is still counted; the wildcard list
		// is set aside. The matrix shows both through the MTA.
		connectD.waitHealth(t, "Aggregate List", 3, "degraded (3 of 15 canaries listed", "so still counted")
		connectD.waitHealth(t, "Wildcard List", 3, "unhealthy", "not counted")
		testConnectMatrix(t,
			func(t *testing.T, ip string, l listing) { expectConnectReject(t, connectD, smtpConnect, ip, l) },
			func(t *testing.T, ip, decision string) { expectAccepted(t, connectD, smtpConnect, ip, decision) })
		if line := connectD.waitHealth(t, "Aggregate List", 1); !strings.HasPrefix(line, `list "Aggregate List": degraded`) {
			t.Errorf("after the matrix: %s", line)
		}
	})

	t.Run("rcpt stage", func(t *testing.T) {
		testRcptStage(t, rcptD, sm.mailDir,
			func(t *testing.T, ip string, rcpts ...string) *transcript { return send(t, smtpRcpt, ip, rcpts...) },
			func(t *testing.T, ip string) {
				sm.waitSyslog(t, fmt.Sprintf("Milter: to=<user@%s>, reject=554 5.7.1 Service unavailable; Client host [%s]", mailDomain, ip))
			})
		t.Run("clean accepted", func(t *testing.T) {
			expectAccepted(t, rcptD, smtpRcpt, cleanIPv6, "accept")
		})
	})

	t.Run("tag action", func(t *testing.T) {
		testTagAction(t, sm.mailDir, func(t *testing.T, ip, decision string) *transcript {
			return expectAccepted(t, tagD, smtpTag, ip, decision)
		})
	})

	// Last: it stops the connect-stage daemon.
	t.Run("milter stopped fails open", func(t *testing.T) {
		connectD.stopAndWait(t)
		for _, ip := range []string{listedIPv4, listedIPv6} {
			tr := send(t, smtpConnect, ip)
			if tr.Greeting.Code != 220 || tr.Data.Code != 250 {
				t.Fatalf("with the milter down, want the listed client's message accepted (F= empty):\n%s", tr)
			}
			waitDelivered(t, sm.mailDir, tr)
		}
		sm.waitSyslog(t, "Milter (rblmilter): error connecting to filter")
	})
}

// sendmailAddr is how Sendmail writes a client address in its logs and
// macros: IPv6 as "IPv6:" and eight uncompressed groups.
func sendmailAddr(ip string) string {
	a := netip.MustParseAddr(ip)
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	groups := make([]string, 8)
	for i := range groups {
		groups[i] = fmt.Sprintf("%x", uint16(b[2*i])<<8|uint16(b[2*i+1]))
	}
	return "IPv6:" + strings.Join(groups, ":")
}
