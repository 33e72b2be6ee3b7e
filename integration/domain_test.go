//go:build integration && linux

package integration

import (
	"fmt"
	"strings"
	"testing"
)

// domainLists are the domain lists of the domain-list daemons, on the
// dnset zones of rbldnsd_test.go: a DBL asked about the client name, the
// HELO name and the sender (the default checks), counting its spam codes
// but not its "abused" ones, and a ZRD asked about HELO and sender.
const domainLists = `
[[list]]
zone = "dbl.test"
name = "Test DBL"
type = "domain"
filters = ["127.0.1.[2..99]"]

[[list]]
zone = "zrd.test"
name = "Test ZRD"
type = "domain"
checks = ["helo", "sender"]
filters = ["127.0.2.[2..24]"]
`

// domainReply names what was listed: the domain, or the client address.
const domainReply = `reply = "554 5.7.1 Service unavailable; {name} blocked using {list}; {txt}"` + "\n"

// domainCase is one session of the domain-list matrix, from a client no
// IP list lists.
type domainCase struct {
	name string
	// helo and sender are what the client says (EHLO, MAIL FROM);
	// empty means the session's defaults, which nothing lists.
	helo, sender string
	// refusal is the reply that refuses the client at EHLO or MAIL FROM;
	// empty for a client whose message is accepted.
	refusal string
	// log is what the decision line's lists (or, for accepted clients,
	// problems) field contains.
	log string
}

func refusedBy(name, list, txt string) string {
	return fmt.Sprintf("554 5.7.1 Service unavailable; %s blocked using %s; %s", name, list, txt)
}

// domainCases are shared by the Postfix and Sendmail matrices. The error
// codes come last: a live error code makes a list unhealthy (not counted)
// until a probe round finds it healthy again.
var domainCases = []domainCase{
	{name: "listed HELO name refused", helo: listedHelo,
		refusal: refusedBy(listedHelo, "Test DBL", dblTXT), log: "Test DBL=127.0.1.2(helo=" + listedHelo + ")"},
	{name: "HELO under a listed registered domain refused", helo: "mx1.mail." + listedDomain,
		refusal: refusedBy(listedDomain, "Test DBL", dblTXT), log: "Test DBL=127.0.1.2(helo=" + listedDomain + ")"},
	{name: "listed sender domain refused", sender: "<bulk@" + listedSenderDomain + ">",
		refusal: refusedBy(listedSenderDomain, "Test DBL", dblTXT), log: "Test DBL=127.0.1.2(sender=" + listedSenderDomain + ")"},
	{name: "young sender domain refused by the ZRD", sender: "<news@Mail." + youngDomain + ">",
		refusal: refusedBy(youngDomain, "Test ZRD", zrdTXT), log: "Test ZRD=127.0.2.2(sender=" + youngDomain + ")"},
	{name: "clean names accepted", helo: "mx.clean.example", sender: "<a@clean.example>"},
	{name: "null sender accepted", sender: "<>"},
	{name: "address literal HELO accepted", helo: "[" + cleanIPv4 + "]"},
	{name: "abused domain code does not count", sender: "<a@" + abusedDomain + ">"},
	{name: "error codes never count", helo: zrdErrorDomain, sender: "<a@" + dblErrorDomain + ">", log: "Test DBL:refused,Test ZRD:refused"},
}

// testDomainMatrix runs domainCases from client through an MTA; send runs
// one session with the given HELO name and sender.
func testDomainMatrix(t *testing.T, d *rblmilterDaemon, mailDir, client string, send func(t *testing.T, helo, sender string) *transcript) {
	for _, c := range domainCases {
		t.Run(c.name, func(t *testing.T) {
			n := d.countDecisions(t, client)
			tr := send(t, c.helo, c.sender)
			if c.refusal == "" {
				if tr.Ehlo.Code != 250 || tr.Mail.Code != 250 || tr.Data.Code != 250 {
					t.Fatalf("want the message accepted:\n%s", tr)
				}
				waitDelivered(t, mailDir, tr)
				e := d.waitDecision(t, client, n+1)
				expectDecision(t, e, "accept")
				if got, _ := e["problems"].(string); !strings.Contains(got, c.log) {
					t.Errorf("decision %v: problems %q, want %q", e, got, c.log)
				}
				return
			}
			expectRefusedAtMail(t, tr, c.refusal)
			e := d.waitDecision(t, client, n+1)
			expectDecision(t, e, "reject", c.log)
			if c.helo == "" {
				return
			}
			// The first time, the HELO name's answer comes while the
			// client goes on to MAIL FROM; it is cached now, and the
			// milter refuses the next session with that name at HELO.
			expectRefusedAtMail(t, send(t, c.helo, c.sender), c.refusal)
			if e := d.waitDecision(t, client, n+2); e["at"] != "helo" {
				t.Errorf("cached: decision %v taken at %v, want helo", e, e["at"])
			}
		})
	}
}

// expectRefusedAtMail checks that the client was refused with refusal at
// MAIL FROM and that no message went through. The milter may have refused
// at HELO already: Postfix and Sendmail both keep a milter's HELO reply
// for MAIL FROM (the EHLO answer only loses its extensions).
func expectRefusedAtMail(t *testing.T, tr *transcript, refusal string) {
	t.Helper()
	if tr.Ehlo.Code != 250 || tr.Mail.String() != refusal || tr.Data.Code != 0 {
		t.Errorf("want %q at MAIL FROM, and no message:\n%s", refusal, tr)
	}
}
