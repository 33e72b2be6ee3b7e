//go:build integration && linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPostfix runs a private Postfix instance with the milter settings of
// contrib/postfix/main.cf in front of four rblmilter daemons (connect
// stage, rcpt stage, tag action, and connect stage over a unix socket to a
// chrooted smtpd), and presents each kind of client with XCLIENT.
func TestPostfix(t *testing.T) {
	requireRoot(t)
	requireCommands(t, "postfix", "postconf", "rbldnsd")
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, freePort(t, "udp", "127.0.0.1"), hostDialer{})

	pf := newPostfixDirs(t, dir)
	// The unix socket lives inside the queue directory (the chroot), in a
	// directory only root and the postfix group may enter.
	sockDir := filepath.Join(pf.queueDir, "rblmilter")
	if err := os.Mkdir(sockDir, 0o750); err != nil {
		t.Fatal(err)
	}
	_, postfixGID := lookupIDs(t, "postfix", "postfix")
	if err := os.Chown(sockDir, 0, postfixGID); err != nil {
		t.Fatal(err)
	}

	daemon := func(name, listen, stage, action, extra string) *rblmilterDaemon {
		return startRblmilter(t, dir, name, milterOptions{
			Listen: listen, Stage: stage, Action: action, DNS: dns.addr,
			Metrics: hostPort("127.0.0.1", freePort(t, "tcp", "127.0.0.1")), Extra: extra,
		}, hostDialer{})
	}
	connectPort := freePort(t, "tcp", "127.0.0.1")
	rcptPort := freePort(t, "tcp", "127.0.0.1")
	tagPort := freePort(t, "tcp", "127.0.0.1")
	connectD := daemon("rblmilter-connect", fmt.Sprintf("inet:127.0.0.1:%d", connectPort), "connect", "reject", "")
	rcptD := daemon("rblmilter-rcpt", fmt.Sprintf("inet:%d@127.0.0.1", rcptPort), "rcpt", "reject", "")
	tagD := daemon("rblmilter-tag", fmt.Sprintf("inet:127.0.0.1:%d", tagPort), "connect", "tag", "")
	unixD := daemon("rblmilter-unix", "unix:"+filepath.Join(sockDir, "rblmilter.sock"), "connect", "reject",
		"socket_group = \"postfix\"\nsocket_mode = \"0660\"\n")

	// The milter settings exactly as contrib ships them; only the address
	// changes.
	snippet := readPostfixSnippet(t)
	contribMilters := snippet.get(t, "smtpd_milters")
	withPort := func(port int) string {
		return replaceOnce(t, "contrib smtpd_milters", contribMilters, "inet:127.0.0.1:8890", fmt.Sprintf("inet:127.0.0.1:%d", port))
	}
	var contribLines strings.Builder
	for _, kv := range snippet.Active {
		value := kv[1]
		if kv[0] == "smtpd_milters" {
			value = withPort(connectPort)
		}
		fmt.Fprintf(&contribLines, "%s = %s\n", kv[0], value)
	}
	// The unix-socket example line, verbatim: the chrooted smtpd finds
	// /rblmilter/rblmilter.sock inside the queue directory.
	unixMilters := snippet.example(t, "smtpd_milters", "unix:")

	smtpConnect := freePort(t, "tcp", "127.0.0.1")
	smtpRcpt := freePort(t, "tcp", "127.0.0.1")
	smtpTag := freePort(t, "tcp", "127.0.0.1")
	smtpUnix := freePort(t, "tcp", "127.0.0.1")
	pf.start(t, contribLines.String(), "", []postfixListener{
		{Port: smtpConnect},
		{Port: smtpRcpt, Milters: withPort(rcptPort)},
		{Port: smtpTag, Milters: withPort(tagPort)},
		{Port: smtpUnix, Milters: unixMilters, Chroot: true},
	})

	send := func(t *testing.T, port int, client string, rcpts ...string) *transcript {
		return sendMail(t, hostDialer{}, session{Server: hostPort("127.0.0.1", port), XClient: client, Rcpts: rcpts})
	}
	// Postfix answers XCLIENT with the greeting for the new client; after a
	// connect-stage reject that is its generic refusal, and the milter's
	// own reply text comes at MAIL FROM.
	refusal := "554 " + mailDomain + " ESMTP not accepting connections"

	expectConnectReject := func(t *testing.T, d *rblmilterDaemon, port int, ip string, l listing) {
		n := d.countDecisions(t, ip)
		tr := send(t, port, ip)
		if got := tr.XClient.String(); got != refusal {
			t.Errorf("greeting after XCLIENT = %q, want %q", got, refusal)
		}
		expectMilterReply(t, "MAIL FROM", tr.Mail, ip, l)
		if len(tr.Rcpts) != 0 || tr.Data.Code != 0 {
			t.Errorf("session went on after the rejected MAIL FROM:\n%s", tr)
		}
		expectDecision(t, d.waitDecision(t, ip, n+1), "reject", l.Log)
	}
	expectAccepted := func(t *testing.T, d *rblmilterDaemon, port int, ip, decision string) *transcript {
		n := d.countDecisions(t, ip)
		tr := send(t, port, ip)
		if tr.XClient.Code != 220 || tr.Mail.Code != 250 || len(tr.Rcpts) != 1 || tr.Rcpts[0].Code != 250 || tr.Data.Code != 250 {
			t.Fatalf("want the message accepted (220, 250, 250, 250):\n%s", tr)
		}
		waitDelivered(t, pf.mailDir, tr)
		expectDecision(t, d.waitDecision(t, ip, n+1), decision)
		return tr
	}

	t.Run("connect stage", func(t *testing.T) {
		t.Run("listed client connecting directly is refused at the greeting", func(t *testing.T) {
			// No XCLIENT: a real connection from another loopback address.
			const ip = listedLocal
			n := connectD.countDecisions(t, ip)
			tr := sendMail(t, hostDialer{}, session{Local: ip, Server: hostPort("127.0.0.1", smtpConnect)})
			if got := tr.Greeting.String(); got != refusal {
				t.Errorf("greeting = %q, want %q", got, refusal)
			}
			expectMilterReply(t, "MAIL FROM", tr.Mail, ip, blListing)
			expectDecision(t, connectD.waitDecision(t, ip, n+1), "reject", blListing.Log)
			pf.waitLog(t, "NOQUEUE: milter-reject: CONNECT from ", fmt.Sprintf("[%s]: 554 5.7.1 Service unavailable; Client host [%s]", ip, ip))
		})
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
		t.Run("newly listed after rbldnsd reload rejected", func(t *testing.T) {
			dns.list(t, "bl4", "bl.test", lateListIPv4, "127.0.0.2")
			expectConnectReject(t, connectD, smtpConnect, lateListIPv4, blListing)
		})
	})

	t.Run("rcpt stage", func(t *testing.T) {
		for _, ip := range []string{listedIPv4, listedIPv6} {
			t.Run("listed "+ip+" rejected at RCPT, postmaster exempt", func(t *testing.T) {
				n := rcptD.countDecisions(t, ip)
				tr := send(t, smtpRcpt, ip, "user", "postmaster")
				if tr.XClient.Code != 220 || tr.Mail.Code != 250 {
					t.Fatalf("want 220 after XCLIENT and 250 at MAIL FROM:\n%s", tr)
				}
				if len(tr.Rcpts) != 2 {
					t.Fatalf("want two RCPT replies:\n%s", tr)
				}
				expectMilterReply(t, "RCPT TO:<user@...>", tr.Rcpts[0], ip, blListing)
				if tr.Rcpts[1].Code != 250 {
					t.Errorf("RCPT TO:<postmaster@...> = %s, want 250 (exempt recipient)", tr.Rcpts[1])
				}
				if tr.Data.Code != 250 {
					t.Fatalf("message to the exempt postmaster not accepted:\n%s", tr)
				}
				waitDelivered(t, pf.mailDir, tr)
				expectDecision(t, rcptD.waitDecision(t, ip, n+1), "reject", blListing.Log)
				pf.waitLog(t, "NOQUEUE: milter-reject: RCPT from ", fmt.Sprintf("[%s]: 554 5.7.1 Service unavailable; Client host [%s]", ip, ip), "to=<user@")
			})
		}
		t.Run("clean accepted", func(t *testing.T) {
			expectAccepted(t, rcptD, smtpRcpt, cleanIPv4, "accept")
		})
	})

	t.Run("tag action", func(t *testing.T) {
		testTagAction(t, pf.mailDir, func(t *testing.T, ip, decision string) *transcript {
			return expectAccepted(t, tagD, smtpTag, ip, decision)
		})
	})

	t.Run("unix socket to chrooted smtpd", func(t *testing.T) {
		t.Run("listed rejected", func(t *testing.T) {
			expectConnectReject(t, unixD, smtpUnix, listedIPv4, blListing)
		})
		t.Run("clean accepted", func(t *testing.T) {
			expectAccepted(t, unixD, smtpUnix, cleanIPv6, "accept")
		})
		t.Run("daemon runs unprivileged after binding", func(t *testing.T) {
			if uid := processUID(t, unixD.pid()); uid != 65534 {
				t.Errorf("rblmilter with user = \"nobody\" runs as uid %d", uid)
			}
		})
	})

	// Last: it stops the connect-stage daemon.
	t.Run("milter stopped fails open", func(t *testing.T) {
		connectD.stopAndWait(t)
		tr := send(t, smtpConnect, listedIPv4)
		if tr.XClient.Code != 220 || tr.Data.Code != 250 {
			t.Fatalf("with the milter down, want the listed client's message accepted (default_action=accept):\n%s", tr)
		}
		waitDelivered(t, pf.mailDir, tr)
		pf.waitLog(t, fmt.Sprintf("warning: connect to Milter service inet:127.0.0.1:%d: Connection refused", connectPort))
	})
}

// listing is how a listed client shows in replies and logs.
type listing struct {
	// Name is the list's display name ({list} in the reply).
	Name string
	// TXT is (part of) the list's TXT record ({txt} in the reply).
	TXT string
	// Log is what the decision line's lists field must contain.
	Log string
}

var (
	blListing  = listing{Name: "Test Blocklist", TXT: blTXT, Log: "Test Blocklist=127.0.0.2"}
	aggListing = listing{Name: "Aggregate List", TXT: "Aggregate part B", Log: "127.0.0.4"}
)

// expectMilterReply checks that an SMTP reply is rblmilter's default reject
// reply for ip (reply = "554 5.7.1 Service unavailable; Client host [{ip}]
// blocked using {list}; {txt}").
func expectMilterReply(t testing.TB, stage string, r reply, ip string, l listing) {
	t.Helper()
	want := fmt.Sprintf("554 5.7.1 Service unavailable; Client host [%s] blocked using %s; ", ip, l.Name)
	if !strings.HasPrefix(r.String(), want) {
		t.Errorf("%s reply = %q, want it to start with %q", stage, r, want)
	}
	if !strings.Contains(r.String(), l.TXT) {
		t.Errorf("%s reply = %q, want the list's TXT %q in it", stage, r, l.TXT)
	}
}

// expectDecision checks a decision log line.
func expectDecision(t testing.TB, e map[string]any, decision string, lists ...string) {
	t.Helper()
	if e["decision"] != decision {
		t.Errorf("decision log %v: decision = %v, want %s", e, e["decision"], decision)
	}
	got, _ := e["lists"].(string)
	for _, l := range lists {
		if !strings.Contains(got, l) {
			t.Errorf("decision log %v: lists = %q, want it to contain %q", e, got, l)
		}
	}
	if strings.Contains(got, "err.test") {
		t.Errorf("decision log %v: the error-code list err.test counted as a listing", e)
	}
	if strings.Contains(got, "Wildcard List") {
		t.Errorf("decision log %v: the wildcard list counted although it lists the world", e)
	}
}
