//go:build integration && linux

package integration

import (
	"fmt"
	"net/mail"
	"reflect"
	"strings"
	"testing"
)

// The policy-level tests' clients (see testZones: strong.test, authbl.test).
const (
	strongIPv4 = "192.0.2.111" // strong.test: weight 3 alone, refused with its own reply
	botIPv4    = "192.0.2.122" // authbl.test: counts only once the client has logged in
	strongTXT  = "Strongly listed by strong.test"
	authblTXT  = "Seen logging in with stolen credentials"
)

// policyLists are the lists of the policy daemons beside the suite's own
// (bl.test weight 1 is the tag level, wl.test the allowlist): one with its
// own reply, and an AuthBL-like list for authenticated sessions.
const policyLists = `
[[list]]
zone = "strong.test"
name = "Strong List"
weight = 3
reply = "554 5.7.1 Client host [{ip}] is listed by {list}: {txt}"

[[list]]
zone = "authbl.test"
name = "AuthBL Test"
weight = 3
sessions = "authenticated"
reply = "554 5.7.1 [{ip}] logs in like a bot ({list}): {txt}"
`

// policyOptions is the daemon of the policy tests: tag at 1, reject at 3,
// every message stamped, decided at RCPT TO. The authserv-id is the MTA's
// {j}, its host name mailDomain. The lab sets its addresses.
func policyOptions() milterOptions {
	return milterOptions{
		Stage: "rcpt", Action: "reject",
		Threshold: 3, Extra: "tag_threshold = 1\nresults_header = true\n", Lists: policyLists,
	}
}

// forgedHeaders are what a sender adds to pre-stamp its message "clean":
// two copies of the results header and an Authentication-Results in our
// name, beside another host's Authentication-Results, which stays.
var forgedHeaders = []string{
	"X-RBL: score=-100 tag=1 reject=3",
	"Authentication-Results: " + mailDomain + "; dnswl=pass dns.zone=forged.example policy.ip=127.0.0.2",
	"Authentication-Results: other.example; spf=pass smtp.mailfrom=client.test.invalid",
	"x-rbl: score=0",
}

// foreignAuthResults is the Authentication-Results of forgedHeaders that is
// not ours.
const foreignAuthResults = "other.example; spf=pass smtp.mailfrom=client.test.invalid"

// policySend delivers one message from client (with the forged headers) as
// far as the MTA lets it; login, where the MTA can be told one, is the
// client's SMTP AUTH login.
type policySend func(t *testing.T, client, login string) *transcript

// testPolicyLevels runs the cases both MTAs share: every delivered message
// carries exactly one results header and none of the forged ones, an
// allowlisted client's the RFC 8904 result, a tag-level client is accepted
// with its listing in the header, and a reject-level client is refused at
// RCPT TO with its list's own reply.
func testPolicyLevels(t *testing.T, d *rblmilterDaemon, mailDir string, send policySend) {
	delivered := func(t *testing.T, client, decision string) *mail.Message {
		t.Helper()
		n := d.countDecisions(t, client)
		tr := send(t, client, "")
		if tr.Mail.Code != 250 || len(tr.Rcpts) != 1 || tr.Rcpts[0].Code != 250 || tr.Data.Code != 250 {
			t.Fatalf("want the message accepted:\n%s", tr)
		}
		m := waitDelivered(t, mailDir, tr)
		expectDecision(t, d.waitDecision(t, client, n+1), decision)
		t.Logf("delivered headers: %v", m.Header)
		return m
	}
	results := func(m *mail.Message) []string { return m.Header["X-Rbl"] }
	ours := func(m *mail.Message) []string {
		var out []string
		for _, v := range m.Header["Authentication-Results"] {
			if v != foreignAuthResults {
				out = append(out, v)
			}
		}
		return out
	}
	keptForeign := func(t *testing.T, m *mail.Message) {
		t.Helper()
		if n := strings.Count(strings.Join(m.Header["Authentication-Results"], "\n"), foreignAuthResults); n != 1 {
			t.Errorf("the other host's Authentication-Results appears %d times, want once: %q", n, m.Header["Authentication-Results"])
		}
	}

	t.Run("clean client: one results header, forged copies removed", func(t *testing.T) {
		m := delivered(t, cleanIPv4, "accept")
		if got, want := results(m), []string{"score=0 tag=1 reject=3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("X-RBL headers %q, want %q", got, want)
		}
		if got := ours(m); len(got) != 0 {
			t.Errorf("Authentication-Results in our name left: %q", got)
		}
		keptForeign(t, m)
	})
	t.Run("tag-level client accepted with the header", func(t *testing.T) {
		m := delivered(t, listedIPv4, "tag")
		if got, want := results(m), []string{"score=1 tag=1 reject=3 listed=Test_Blocklist(127.0.0.2)"}; !reflect.DeepEqual(got, want) {
			t.Errorf("X-RBL headers %q, want %q", got, want)
		}
	})
	t.Run("allowlisted client carries the RFC 8904 result", func(t *testing.T) {
		m := delivered(t, allowedIPv4, "allowlisted")
		want := []string{mailDomain + `; dnswl=pass dns.zone=wl.test policy.ip=127.0.10.2 policy.txt="Allowlisted by wl.test"`}
		if got := ours(m); !reflect.DeepEqual(got, want) {
			t.Errorf("our Authentication-Results %q, want %q", got, want)
		}
		keptForeign(t, m)
		if got := results(m); len(got) != 1 || !strings.Contains(got[0], "listed=Test_Allowlist(127.0.10.2)") {
			t.Errorf("X-RBL headers %q, want one naming the allowlist", got)
		}
	})
	t.Run("reject-level client refused with its list's own reply", func(t *testing.T) {
		n := d.countDecisions(t, strongIPv4)
		tr := send(t, strongIPv4, "")
		want := fmt.Sprintf("554 5.7.1 Client host [%s] is listed by Strong List: %s", strongIPv4, strongTXT)
		if len(tr.Rcpts) != 1 || tr.Rcpts[0].String() != want || tr.Data.Code != 0 {
			t.Errorf("want RCPT TO refused with %q and no message:\n%s", want, tr)
		}
		expectDecision(t, d.waitDecision(t, strongIPv4, n+1), "reject", "Strong List=127.0.0.2")
	})
}

// TestPostfixPolicy runs the policy levels through a private Postfix in
// front of one daemon with contrib's milter settings, and logs clients in
// with XCLIENT LOGIN= (Postfix then sends {auth_authen}, as after SMTP
// AUTH): an authenticated session is refused only by the
// authenticated-only list.
func TestPostfixPolicy(t *testing.T) {
	lab := newPostfixLab(t)
	d, server := lab.startContrib(t, "rblmilter-policy", policyOptions())
	pf := lab.pf
	send := func(t *testing.T, client, login string) *transcript {
		return sendMail(t, hostDialer{}, session{Server: server, XClient: client, Login: login, Headers: forgedHeaders})
	}

	testPolicyLevels(t, d, pf.mailDir, send)

	t.Run("authenticated session refused only by the authenticated-only list", func(t *testing.T) {
		n := d.countDecisions(t, botIPv4)
		tr := send(t, botIPv4, "alice")
		want := fmt.Sprintf("554 5.7.1 [%s] logs in like a bot (AuthBL Test): %s", botIPv4, authblTXT)
		if len(tr.Rcpts) != 1 || tr.Rcpts[0].String() != want {
			t.Errorf("logged-in bot: want RCPT TO refused with %q:\n%s", want, tr)
		}
		expectDecision(t, d.waitDecision(t, botIPv4, n+1), "reject", "AuthBL Test=127.0.0.2")
		pf.waitLog(t, "milter-reject: RCPT from ", fmt.Sprintf("[%s]: %s", botIPv4, want))

		// The same address without a login: AuthBL does not count.
		tr = send(t, botIPv4, "")
		if tr.Data.Code != 250 {
			t.Errorf("bot address without a login: want the message accepted:\n%s", tr)
		}
		waitDelivered(t, pf.mailDir, tr)

		// A client the ordinary lists refuse passes once logged in: they
		// count for unauthenticated sessions only.
		tr = send(t, strongIPv4, "bob")
		if tr.Data.Code != 250 {
			t.Fatalf("logged-in client on strong.test: want the message accepted:\n%s", tr)
		}
		m := waitDelivered(t, pf.mailDir, tr)
		if got, want := m.Header["X-Rbl"], []string{"score=0 tag=1 reject=3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("X-RBL headers %q, want %q (strong.test does not count for it)", got, want)
		}
	})
}

// TestSendmailPolicy runs the shared policy cases through a private
// Sendmail in a network namespace, with contrib's INPUT_MAIL_FILTER line
// verbatim; clients connect from their own addresses.
func TestSendmailPolicy(t *testing.T) {
	lab := newSendmailLab(t, cleanIPv4, listedIPv4, allowedIPv4, strongIPv4)
	d, sm, server := lab.startContrib(t, "policy", policyOptions())
	send := func(t *testing.T, client, _ string) *transcript {
		return sendMail(t, lab.ns, session{Local: client, Server: server, Headers: forgedHeaders})
	}
	testPolicyLevels(t, d, sm.mailDir, send)
}
