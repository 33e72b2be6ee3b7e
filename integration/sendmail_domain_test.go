//go:build integration && linux

package integration

import (
	"fmt"
	"testing"
)

// TestSendmailDomainLists runs the domain lists through a private Sendmail
// in a network namespace, with contrib's milter line: the client's name is
// the one Sendmail finds in its private hosts file (each client has one,
// verified by its forward lookup), its HELO name and its sender come from
// the test client.
func TestSendmailDomainLists(t *testing.T) {
	requireRoot(t)
	sendmailTree(t)
	requireCommands(t, "rbldnsd", "ip", "m4", "unshare")
	clients := []string{cleanIPv4, listedNameIPv4}
	addrs := []string{serverIPv4 + "/32", serverIPv6 + "/128"}
	for _, ip := range clients {
		addrs = append(addrs, ip+"/32")
	}
	ns := newNetns(t, addrs...)
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, 5353, ns, ns.exec()...)
	d := startRblmilter(t, dir, "rblmilter-domain", milterOptions{
		Listen: fmt.Sprintf("inet:%d@127.0.0.1", contribMilterPort), Stage: "connect", Action: "reject", DNS: dns.addr,
		Metrics: hostPort("127.0.0.1", 9890), Extra: domainReply, Lists: domainLists,
	}, ns, ns.exec()...)
	const smtpPort = 2525
	sm := startSendmail(t, ns, sharedDir(t), []sendmailDaemon{{Name: "domain", Port: smtpPort}}, nil, clients...)
	server := hostPort(serverIPv4, smtpPort)

	t.Run("listed client name refused at connect", func(t *testing.T) {
		const ip = listedNameIPv4
		n := d.countDecisions(t, ip)
		tr := sendMail(t, ns, session{Local: ip, Server: server})
		// As for a listed address: Sendmail greets with its own refusal,
		// rejects every command, and only logs the milter's reply.
		if want := "554 " + mailDomain + " ESMTP not accepting messages"; tr.Greeting.String() != want {
			t.Errorf("greeting %q, want %q", tr.Greeting, want)
		}
		if tr.Mail.String() != "550 5.0.0 Command rejected" || tr.Data.Code != 0 {
			t.Errorf("want every command rejected:\n%s", tr)
		}
		e := d.waitDecision(t, ip, n+1)
		expectDecision(t, e, "reject", "Test DBL=127.0.1.2(client="+clientName(ip)+")")
		if e["at"] != "connect" {
			t.Errorf("decision %v: taken at %v, want connect", e, e["at"])
		}
		sm.waitSyslog(t, "reject="+refusedBy(clientName(ip), "Test DBL", dblTXT))
	})
	testDomainMatrix(t, d, sm.mailDir, cleanIPv4, func(t *testing.T, helo, sender string) *transcript {
		return sendMail(t, ns, session{Local: cleanIPv4, Server: server, Helo: helo, Sender: sender})
	})
}
