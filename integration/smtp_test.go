//go:build integration && linux

package integration

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reply is one SMTP reply.
type reply struct {
	Code int
	// Text is the reply text after the code, lines joined with "\n".
	Text string
}

func (r reply) String() string {
	if r.Code == 0 {
		return "(not sent)"
	}
	return fmt.Sprintf("%d %s", r.Code, strings.ReplaceAll(r.Text, "\n", " / "))
}

func (r reply) ok() bool { return r.Code >= 200 && r.Code < 400 }

// session describes one SMTP client session.
type session struct {
	// Local is the client's source address; empty lets the kernel choose.
	Local string
	// Server is the MTA's host:port.
	Server string
	// XClient, when set, is the client address presented to Postfix with
	// XCLIENT (Postfix then runs its milters' connect stage again with it).
	XClient string
	// XClientName is the client name sent with XCLIENT (NAME=), the
	// name Postfix treats as verified; the default is [UNAVAILABLE].
	XClientName string
	// Helo is the EHLO name; the default is client.test.invalid.
	Helo string
	// Sender is the MAIL FROM path with its angle brackets ("<>" for the
	// null sender); the default is <sender@client.test.invalid>.
	Sender string
	// Rcpts are the recipients; the default is one ordinary mailbox.
	Rcpts []string
	// Login, with XClient, is the SASL login Postfix is told the client
	// authenticated with (XCLIENT LOGIN=).
	Login string
	// Headers are more header lines of the message ("Name: value"),
	// before the usual ones.
	Headers []string
}

// defaultHelo and defaultSender are what a session sends unless told
// otherwise; neither is listed anywhere.
const (
	defaultHelo   = "client.test.invalid"
	defaultSender = "<sender@client.test.invalid>"
)

// transcript is what the client saw.
type transcript struct {
	Greeting reply
	// XClient is the reply to XCLIENT: the greeting for the new client.
	XClient reply
	Ehlo    reply
	Mail    reply
	Rcpts   []reply
	// Data is the reply after the message was sent.
	Data reply
	// Token is in the Subject of the message, to find it once delivered.
	Token string
	log   []string
}

func (tr *transcript) String() string { return strings.Join(tr.log, "\n") }

// clientGreeting is the greeting for the client the session stands for:
// with XCLIENT, Postfix's reply to it; otherwise the server's greeting.
func (tr *transcript) clientGreeting() reply {
	if tr.XClient.Code != 0 {
		return tr.XClient
	}
	return tr.Greeting
}

// sendMail runs one SMTP session through d as a sending MTA would, going
// as far as the server lets it, and records every reply.
func sendMail(t testing.TB, d dialer, s session) *transcript {
	t.Helper()
	tr, err := trySendMail(d, s)
	if err != nil {
		t.Fatalf("SMTP session to %s (client %s%s): %v\ntranscript:\n%s", s.Server, s.Local, s.XClient, err, tr)
	}
	t.Logf("SMTP session to %s (client %s%s):\n%s", s.Server, s.Local, s.XClient, tr)
	return tr
}

func trySendMail(d dialer, s session) (*transcript, error) {
	tr := &transcript{Token: newToken()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := d.dial(ctx, "tcp", s.Local, s.Server)
	if err != nil {
		return tr, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return tr, err
	}
	c := textproto.NewConn(conn)
	read := func(into *reply) error {
		code, msg, err := c.ReadResponse(0)
		if err != nil && code == 0 {
			return err
		}
		*into = reply{Code: code, Text: msg}
		tr.log = append(tr.log, "S: "+into.String())
		return nil
	}
	cmd := func(into *reply, format string, args ...any) error {
		line := fmt.Sprintf(format, args...)
		tr.log = append(tr.log, "C: "+line)
		if err := c.PrintfLine("%s", line); err != nil {
			return err
		}
		return read(into)
	}
	quit := func() {
		var r reply
		_ = cmd(&r, "QUIT")
	}
	if err := read(&tr.Greeting); err != nil {
		return tr, fmt.Errorf("greeting: %w", err)
	}
	helo, sender, name := cmp.Or(s.Helo, defaultHelo), cmp.Or(s.Sender, defaultSender), cmp.Or(s.XClientName, "[UNAVAILABLE]")
	// Before XCLIENT the session is the test's own connection: it shows
	// the default name, so that only the client XCLIENT presents shows
	// the session's.
	first := helo
	if s.XClient != "" {
		first = defaultHelo
	}
	if err := cmd(&tr.Ehlo, "EHLO %s", first); err != nil {
		return tr, err
	}
	if s.XClient != "" {
		addr := netip.MustParseAddr(s.XClient)
		param := addr.String()
		if addr.Is6() {
			param = "IPV6:" + param
		}
		login := ""
		if s.Login != "" {
			login = " LOGIN=" + s.Login
		}
		if err := cmd(&tr.XClient, "XCLIENT ADDR=%s NAME=%s%s", param, name, login); err != nil {
			return tr, err
		}
		if err := cmd(&tr.Ehlo, "EHLO %s", helo); err != nil {
			return tr, err
		}
	}
	if err := cmd(&tr.Mail, "MAIL FROM:%s", sender); err != nil {
		return tr, err
	}
	if !tr.Mail.ok() {
		quit()
		return tr, nil
	}
	rcpts := s.Rcpts
	if len(rcpts) == 0 {
		rcpts = []string{"user"}
	}
	accepted := 0
	for _, rcpt := range rcpts {
		var r reply
		if err := cmd(&r, "RCPT TO:<%s@%s>", rcpt, mailDomain); err != nil {
			return tr, err
		}
		tr.Rcpts = append(tr.Rcpts, r)
		if r.ok() {
			accepted++
		}
	}
	if accepted == 0 {
		quit()
		return tr, nil
	}
	var r reply
	if err := cmd(&r, "DATA"); err != nil {
		return tr, err
	}
	if r.Code != 354 {
		quit()
		return tr, nil
	}
	w := c.DotWriter()
	for _, h := range s.Headers {
		fmt.Fprintf(w, "%s\r\n", h)
	}
	fmt.Fprintf(w, "From: <sender@client.test.invalid>\r\nTo: <%s@%s>\r\nSubject: rblmilter test %s\r\nMessage-ID: <%s@client.test.invalid>\r\n\r\nTest message %s.\r\n",
		rcpts[0], mailDomain, tr.Token, tr.Token, tr.Token)
	if err := w.Close(); err != nil {
		return tr, err
	}
	tr.log = append(tr.log, "C: (message with Subject token "+tr.Token+")")
	if err := read(&tr.Data); err != nil {
		return tr, err
	}
	quit()
	return tr, nil
}

// mailDomain is the domain both MTAs deliver locally in the tests.
const mailDomain = "mta.test.invalid"

func newToken() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// findMessage looks through the files below dir for the message whose
// Subject carries token.
func findMessage(dir, token string) (*mail.Message, error) {
	var found *mail.Message
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := mail.ReadMessage(f)
		if err != nil {
			return nil // a file still being written
		}
		if strings.Contains(m.Header.Get("Subject"), token) {
			found = m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("no message with token %s delivered below %s", token, dir)
	}
	return found, nil
}

// waitDelivered waits until the message of tr has been delivered below dir.
func waitDelivered(t testing.TB, dir string, tr *transcript) *mail.Message {
	t.Helper()
	var m *mail.Message
	waitFor(t, 30*time.Second, "delivery of message "+tr.Token, func() error {
		var err error
		m, err = findMessage(dir, tr.Token)
		return err
	})
	return m
}

// hostPort joins an address and port for dialing.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// testTagAction checks action = "tag" through an MTA: a listed client's
// message is delivered with the results header naming the list, a clean
// client's without it. send delivers one message from ip and returns its
// transcript once the daemon logged the expected decision.
func testTagAction(t *testing.T, mailDir string, send func(t *testing.T, ip, decision string) *transcript) {
	for _, ip := range []string{listedIPv4, listedIPv6} {
		t.Run("listed "+ip+" delivered with header", func(t *testing.T) {
			m := waitDelivered(t, mailDir, send(t, ip, "reject"))
			want := []string{"score=1 reject=1 listed=Test_Blocklist(127.0.0.2)"}
			if got := m.Header["X-Rbl"]; !reflect.DeepEqual(got, want) {
				t.Errorf("delivered message has X-RBL: %q, want %q; headers: %v", got, want, m.Header)
			}
		})
	}
	t.Run("clean delivered without header", func(t *testing.T) {
		m := waitDelivered(t, mailDir, send(t, cleanIPv4, "accept"))
		if h, ok := m.Header["X-Rbl"]; ok {
			t.Errorf("clean client's message has X-RBL: %q", h)
		}
	})
}

// checkAccepted sends one message from ip with send and checks that the MTA
// took it (220, 250, 250, 250) and delivered it to mailDir, and that d
// logged decision for ip.
func checkAccepted(t *testing.T, d *rblmilterDaemon, mailDir, ip, decision string, send func() *transcript) *transcript {
	t.Helper()
	n := d.countDecisions(t, ip)
	tr := send()
	if tr.clientGreeting().Code != 220 || tr.Mail.Code != 250 || len(tr.Rcpts) != 1 || tr.Rcpts[0].Code != 250 || tr.Data.Code != 250 {
		t.Fatalf("want the message accepted (220, 250, 250, 250):\n%s", tr)
	}
	waitDelivered(t, mailDir, tr)
	expectDecision(t, d.waitDecision(t, ip, n+1), decision)
	return tr
}

// testRcptStage runs the rcpt-stage cases every MTA shares: a listed
// client, IPv4 and IPv6, is refused at RCPT TO with rblmilter's reply
// while the exempt postmaster still gets the message. send delivers one
// message from ip to the local parts rcpts through the rcpt-stage daemon
// d; mtaLogged waits for the MTA's log line of the refusal of ip.
func testRcptStage(t *testing.T, d *rblmilterDaemon, mailDir string, send func(t *testing.T, ip string, rcpts ...string) *transcript, mtaLogged func(t *testing.T, ip string)) {
	for _, ip := range []string{listedIPv4, listedIPv6} {
		t.Run("listed "+ip+" rejected at RCPT, postmaster exempt", func(t *testing.T) {
			n := d.countDecisions(t, ip)
			tr := send(t, ip, "user", "postmaster")
			if tr.clientGreeting().Code != 220 || tr.Mail.Code != 250 {
				t.Fatalf("want 220 greeting and 250 at MAIL FROM:\n%s", tr)
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
			waitDelivered(t, mailDir, tr)
			expectDecision(t, d.waitDecision(t, ip, n+1), "reject", blListing.Log)
			mtaLogged(t, ip)
		})
	}
}

// testConnectMatrix runs the connect-stage cases every MTA shares: listed
// IPv4 and IPv6 clients and a counting aggregate code are refused, while a
// non-counting aggregate code, clean clients beside a list answering an
// error code and a list listing the world (weight 3 each), and an
// allowlisted client are accepted.
func testConnectMatrix(t *testing.T, reject func(t *testing.T, ip string, l listing), accept func(t *testing.T, ip, decision string)) {
	t.Run("listed IPv4 rejected", func(t *testing.T) { reject(t, listedIPv4, blListing) })
	t.Run("listed IPv6 rejected", func(t *testing.T) { reject(t, listedIPv6, blListing) })
	t.Run("aggregate list code that counts rejected", func(t *testing.T) { reject(t, aggListedIPv4, aggListing) })
	t.Run("aggregate list code that does not count accepted", func(t *testing.T) { accept(t, aggCleanIPv4, "accept") })
	t.Run("clean IPv4 accepted despite error-code and wildcard lists", func(t *testing.T) { accept(t, cleanIPv4, "accept") })
	t.Run("clean IPv6 accepted despite error-code and wildcard lists", func(t *testing.T) { accept(t, cleanIPv6, "accept") })
	t.Run("listed but allowlisted accepted", func(t *testing.T) { accept(t, allowedIPv4, "allowlisted") })
}
