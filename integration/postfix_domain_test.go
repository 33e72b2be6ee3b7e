//go:build integration && linux

package integration

import "testing"

// TestPostfixDomainLists runs the domain lists through a private Postfix
// with contrib's milter settings: the client's name comes with XCLIENT
// NAME=, its HELO name with EHLO, its sender with MAIL FROM.
func TestPostfixDomainLists(t *testing.T) {
	lab := newPostfixLab(t)
	d, server := lab.startContrib(t, "rblmilter-domain", milterOptions{
		Stage: "connect", Action: "reject", Extra: domainReply, Lists: domainLists,
	})

	t.Run("listed client name refused at connect", func(t *testing.T) {
		n := d.countDecisions(t, cleanIPv4)
		tr := sendMail(t, hostDialer{}, session{Server: server, XClient: cleanIPv4, XClientName: listedClientName})
		// As for a listed address: Postfix greets the new client with its
		// generic refusal and shows the milter's reply at MAIL FROM.
		if want := "554 " + mailDomain + " ESMTP not accepting connections"; tr.XClient.String() != want {
			t.Errorf("greeting after XCLIENT = %q, want %q", tr.XClient, want)
		}
		if want := refusedBy(listedClientName, "Test DBL", dblTXT); tr.Mail.String() != want {
			t.Errorf("MAIL FROM reply %q, want %q", tr.Mail, want)
		}
		e := d.waitDecision(t, cleanIPv4, n+1)
		expectDecision(t, e, "reject", "Test DBL=127.0.1.2(client="+listedClientName+")")
		if e["at"] != "connect" {
			t.Errorf("decision %v: taken at %v, want connect", e, e["at"])
		}
	})
	testDomainMatrix(t, d, lab.pf.mailDir, cleanIPv4, func(t *testing.T, helo, sender string) *transcript {
		return sendMail(t, hostDialer{}, session{Server: server, XClient: cleanIPv4, XClientName: "mx.clean.example", Helo: helo, Sender: sender})
	})
}
