//go:build integration && linux

package integration

import "testing"

// TestSendmailDomainLists runs the domain lists through a private Sendmail
// in a network namespace, with contrib's milter line: the client's name is
// the one Sendmail finds in its private hosts file (each client has one,
// verified by its forward lookup), its HELO name and its sender come from
// the test client.
func TestSendmailDomainLists(t *testing.T) {
	lab := newSendmailLab(t, cleanIPv4, listedNameIPv4)
	ns := lab.ns
	d, sm, server := lab.startContrib(t, "domain", milterOptions{
		Stage: "connect", Action: "reject", Extra: domainReply, Lists: domainLists,
	})

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
