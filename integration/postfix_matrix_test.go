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
	lab := newPostfixLab(t)
	dir, dns, pf := lab.dir, lab.dns, lab.pf
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

	snippet := readPostfixSnippet(t)
	// The unix-socket example line, verbatim: the chrooted smtpd finds
	// /rblmilter/rblmilter.sock inside the queue directory.
	unixMilters := snippet.example(t, "smtpd_milters", "unix:")

	smtpConnect := freePort(t, "tcp", "127.0.0.1")
	smtpRcpt := freePort(t, "tcp", "127.0.0.1")
	smtpTag := freePort(t, "tcp", "127.0.0.1")
	smtpUnix := freePort(t, "tcp", "127.0.0.1")
	pf.start(t, snippet.mainLines(t, connectPort), "", []postfixListener{
		{Port: smtpConnect},
		{Port: smtpRcpt, Milters: snippet.milters(t, rcptPort)},
		{Port: smtpTag, Milters: snippet.milters(t, tagPort)},
		{Port: smtpUnix, Milters: unixMilters, Chroot: true},
	})
	connectRoute := postfixRoute{pf: pf, d: connectD, port: smtpConnect}
	rcptRoute := postfixRoute{pf: pf, d: rcptD, port: smtpRcpt}
	tagRoute := postfixRoute{pf: pf, d: tagD, port: smtpTag}
	unixRoute := postfixRoute{pf: pf, d: unixD, port: smtpUnix}

	t.Run("connect stage", func(t *testing.T) {
		t.Run("listed client connecting directly is refused at the greeting", func(t *testing.T) {
			// No XCLIENT: a real connection from another loopback address.
			const ip = listedLocal
			n := connectD.countDecisions(t, ip)
			tr := sendMail(t, hostDialer{}, session{Local: ip, Server: hostPort("127.0.0.1", smtpConnect)})
			if got := tr.Greeting.String(); got != postfixConnectRefusal {
				t.Errorf("greeting = %q, want %q", got, postfixConnectRefusal)
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
		testConnectMatrix(t, connectRoute.rejectedAtConnect, func(t *testing.T, ip, decision string) { connectRoute.accepted(t, ip, decision) })
		if line := connectD.waitHealth(t, "Aggregate List", 1); !strings.HasPrefix(line, `list "Aggregate List": degraded`) {
			t.Errorf("after the matrix: %s", line)
		}
		t.Run("newly listed after rbldnsd reload rejected", func(t *testing.T) {
			dns.list(t, "bl4", "bl.test", lateListIPv4, "127.0.0.2")
			connectRoute.rejectedAtConnect(t, lateListIPv4, blListing)
		})
	})

	t.Run("rcpt stage", func(t *testing.T) {
		testRcptStage(t, rcptD, pf.mailDir, rcptRoute.send,
			func(t *testing.T, ip string) {
				pf.waitLog(t, "NOQUEUE: milter-reject: RCPT from ", fmt.Sprintf("[%s]: 554 5.7.1 Service unavailable; Client host [%s]", ip, ip), "to=<user@")
			})
		t.Run("clean accepted", func(t *testing.T) {
			rcptRoute.accepted(t, cleanIPv4, "accept")
		})
	})

	t.Run("tag action", func(t *testing.T) {
		testTagAction(t, pf.mailDir, tagRoute.accepted)
	})

	t.Run("unix socket to chrooted smtpd", func(t *testing.T) {
		t.Run("listed rejected", func(t *testing.T) {
			unixRoute.rejectedAtConnect(t, listedIPv4, blListing)
		})
		t.Run("clean accepted", func(t *testing.T) {
			unixRoute.accepted(t, cleanIPv6, "accept")
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
		tr := connectRoute.send(t, listedIPv4)
		if tr.XClient.Code != 220 || tr.Data.Code != 250 {
			t.Fatalf("with the milter down, want the listed client's message accepted (default_action=accept):\n%s", tr)
		}
		waitDelivered(t, pf.mailDir, tr)
		pf.waitLog(t, fmt.Sprintf("warning: connect to Milter service inet:127.0.0.1:%d: Connection refused", connectPort))
	})
}

// postfixRoute is one smtpd listener of a private Postfix instance and the
// rblmilter daemon behind it.
type postfixRoute struct {
	pf   *postfixInstance
	d    *rblmilterDaemon
	port int
}

// postfixConnectRefusal is how Postfix greets a client that a milter
// rejected at the connect stage (also in its answer to XCLIENT, the
// greeting for the new client); the milter's own reply text comes at MAIL
// FROM.
const postfixConnectRefusal = "554 " + mailDomain + " ESMTP not accepting connections"

// send runs one SMTP session through the route, presenting client with
// XCLIENT.
func (r postfixRoute) send(t *testing.T, client string, rcpts ...string) *transcript {
	return sendMail(t, hostDialer{}, session{Server: hostPort("127.0.0.1", r.port), XClient: client, Rcpts: rcpts})
}

// rejectedAtConnect checks that ip is refused at the connect stage with the
// milter's reply for listing l, and that the milter logged the reject.
func (r postfixRoute) rejectedAtConnect(t *testing.T, ip string, l listing) {
	n := r.d.countDecisions(t, ip)
	tr := r.send(t, ip)
	if got := tr.XClient.String(); got != postfixConnectRefusal {
		t.Errorf("greeting after XCLIENT = %q, want %q", got, postfixConnectRefusal)
	}
	expectMilterReply(t, "MAIL FROM", tr.Mail, ip, l)
	if len(tr.Rcpts) != 0 || tr.Data.Code != 0 {
		t.Errorf("session went on after the rejected MAIL FROM:\n%s", tr)
	}
	expectDecision(t, r.d.waitDecision(t, ip, n+1), "reject", l.Log)
}

// accepted checks that ip's message is delivered and that the milter logged
// decision for it.
func (r postfixRoute) accepted(t *testing.T, ip, decision string) *transcript {
	return checkAccepted(t, r.d, r.pf.mailDir, ip, decision, func() *transcript { return r.send(t, ip) })
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
