package main

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMTA is a small SMTP server with the behaviours of the configurations
// scripts/bench-postfix.sh compares, chosen by the client's real source
// address: refusing a listed client at the banner (a connect-stage
// milter), at RCPT (reject_rbl_client), or after a multi-line pre-greeting
// with a code of its own (postscreen's "220-" then 521).
type fakeMTA struct {
	ln      net.Listener
	refuse  func(client netip.Addr) (stage smtpStage, code int)
	mu      sync.Mutex
	clients map[netip.Addr]int
	quits   int
	wg      sync.WaitGroup
}

func startFakeMTA(t *testing.T, network, addr string, refuse func(netip.Addr) (smtpStage, int)) *fakeMTA {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	m := &fakeMTA{ln: ln, refuse: refuse, clients: map[netip.Addr]int{}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		m.wg.Wait()
	})
	return m
}

func (m *fakeMTA) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	m.mu.Lock()
	m.clients[client]++
	m.mu.Unlock()
	stage, code := m.refuse(client)
	w := bufio.NewWriter(c)
	r := bufio.NewReader(c)
	say := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	reply := func(st smtpStage, ok ...string) {
		if st == stage && code != 0 {
			say(strings.Replace("CODE refused", "CODE", strconv.Itoa(code), 1))
			return
		}
		say(ok...)
	}
	switch {
	case stage == smtpBanner && code == 521:
		say("220-mx.test pre-greeting", "521 5.7.1 go away")
	case stage == smtpBanner && code != 0:
		say(strconv.Itoa(code) + " mx.test not accepting connections")
	default:
		say("220-mx.test ESMTP", "220 mx.test ESMTP")
	}
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if line == ".\r\n" {
				inData = false
				reply(smtpEnd, "250 2.0.0 Ok: queued")
			}
			continue
		}
		switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
		case "EHLO":
			reply(smtpHelo, "250-mx.test", "250 PIPELINING")
		case "MAIL":
			reply(smtpMail, "250 2.1.0 Ok")
		case "RCPT":
			reply(smtpRcpt, "250 2.1.5 Ok")
		case "DATA":
			if stage == smtpData && code != 0 {
				reply(smtpData)
				continue
			}
			inData = true
			say("354 End data with <CR><LF>.<CR><LF>")
		case "QUIT":
			m.mu.Lock()
			m.quits++
			m.mu.Unlock()
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

// loopbackMix draws listed clients from 127.0.0.0/24 and clean ones from
// 127.0.1.0/24 (IPv6: ::1, the one local IPv6 address): on Linux every
// 127/8 address is local, so the client can bind them as real source
// addresses without a namespace.
func loopbackMix(t *testing.T, listed, ipv6 string) *mix {
	t.Helper()
	l, err := parseFraction("-listed", listed)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseFraction("-ipv6", ipv6)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := parseNets("listed", "127.0.0.0/24")
	cn, _ := parseNets("clean", "127.0.1.0/24,::1/128")
	m, err := newMix(l, 0, v, 0, ln, cn)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var loopbackListed = netip.MustParsePrefix("127.0.0.0/24")

func smtpTestConfig(server string, m *mix, n uint64) smtpConfig {
	return smtpConfig{
		drivePlan: drivePlan{Sessions: n, Concurrency: 4, Mix: m},
		Server4:   server, Timeout: 10 * time.Second,
		Helo: "client.bench.test", From: "sender@bench.test", Rcpt: "user@bench.test",
	}
}

func TestSMTPRefusalStagesAndWrongOutcomes(t *testing.T) {
	for _, c := range []struct {
		name     string
		stage    smtpStage
		code     int
		outcome  string
		leakEach int // every n-th listed client is let through (0: none)
	}{
		{"connect-stage milter", smtpBanner, 554, "banner 554", 0},
		{"reject_rbl_client", smtpRcpt, 554, "rcpt 554", 0},
		{"postscreen drop after a pre-greeting", smtpBanner, 521, "banner 521", 0},
		{"tempfail at MAIL", smtpMail, 451, "mail 451", 0},
		{"refused after the message", smtpEnd, 550, "end-of-data 550", 0},
		{"a leaky filter", smtpRcpt, 550, "rcpt 550", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			mta := startFakeMTA(t, "tcp", "127.0.0.1:0", func(a netip.Addr) (smtpStage, int) {
				if loopbackListed.Contains(a) && (c.leakEach == 0 || a.As4()[3]%byte(c.leakEach) != 0) {
					return c.stage, c.code
				}
				return 0, 0
			})
			res, err := runSMTP(context.Background(), smtpTestConfig(mta.ln.Addr().String(), loopbackMix(t, "0.5", "0"), 40))
			if err != nil {
				t.Fatal(err)
			}
			rep := res.report()
			if rep.Sessions != 40 || rep.Errors != 0 {
				t.Fatalf("sessions %d errors %d %v, want 40 without errors", rep.Sessions, rep.Errors, rep.ErrorSamples)
			}
			// Listed: 127.0.0.1 .. 127.0.0.20; with leakEach 5, .5 .10
			// .15 .20 get through.
			leaked := uint64(0)
			if c.leakEach != 0 {
				leaked = 4
			}
			wantListed := map[string]uint64{c.outcome: 20 - leaked}
			if leaked > 0 {
				wantListed["accepted"] = leaked
			}
			if !maps.Equal(rep.Listed.Outcomes, wantListed) || !maps.Equal(rep.Clean.Outcomes, map[string]uint64{"accepted": 20}) {
				t.Errorf("listed %v clean %v; want listed %v, clean all accepted", rep.Listed.Outcomes, rep.Clean.Outcomes, wantListed)
			}
			if rep.ListedAccepted != leaked || rep.CleanRefused != 0 {
				t.Errorf("wrong outcomes: listed accepted %d clean refused %d, want %d and 0", rep.ListedAccepted, rep.CleanRefused, leaked)
			}
			if rep.Listed.RefusedAt.Max == 0 || rep.Clean.AcceptedAt.Max == 0 || rep.Clean.Greeting.Max == 0 ||
				rep.Clean.AcceptedAt.P50 < rep.Clean.Greeting.P50 {
				t.Errorf("latencies: listed refused %v, clean greeting %v accepted %v", rep.Listed.RefusedAt, rep.Clean.Greeting, rep.Clean.AcceptedAt)
			}
			mta.mu.Lock()
			defer mta.mu.Unlock()
			// Each session came from its own address, and every one
			// ended with QUIT, refused or not.
			if len(mta.clients) != 40 || mta.quits != 40 {
				t.Errorf("server saw %d distinct clients and %d QUITs, want 40 and 40", len(mta.clients), mta.quits)
			}
		})
	}
}

func TestSMTPIPv6ClientsUseTheIPv6Server(t *testing.T) {
	mta4 := startFakeMTA(t, "tcp4", "127.0.0.1:0", func(netip.Addr) (smtpStage, int) { return 0, 0 })
	mta6 := startFakeMTA(t, "tcp6", "[::1]:0", func(netip.Addr) (smtpStage, int) { return smtpBanner, 554 })
	cfg := smtpTestConfig(mta4.ln.Addr().String(), loopbackMix(t, "0", "0.5"), 10)
	cfg.Server6 = mta6.ln.Addr().String()
	res, err := runSMTP(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Errors != 0 || rep.Mix.IPv6 != 5 || !maps.Equal(rep.Clean.Outcomes, map[string]uint64{"accepted": 5, "banner 554": 5}) {
		t.Errorf("errors %d %v, ipv6 %d, clean outcomes %v; want the 5 IPv6 clients refused by the IPv6 server",
			rep.Errors, rep.ErrorSamples, rep.Mix.IPv6, rep.Clean.Outcomes)
	}
	if rep.CleanRefused != 5 {
		t.Errorf("clean refused %d, want 5", rep.CleanRefused)
	}
}

func TestSMTPErrorsAndConfig(t *testing.T) {
	// A server that hangs up at once: every session fails at the banner.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	res, err := runSMTP(context.Background(), smtpTestConfig(ln.Addr().String(), loopbackMix(t, "0", "0"), 3))
	if err != nil {
		t.Fatal(err)
	}
	if rep := res.report(); rep.Errors != 3 || rep.ErrorKinds["banner"] != 3 || rep.Sessions != 0 {
		t.Errorf("errors %d kinds %v sessions %d, want 3 banner errors", rep.Errors, rep.ErrorKinds, rep.Sessions)
	}

	cfg := smtpTestConfig("127.0.0.1:1", loopbackMix(t, "0", "0.5"), 3)
	if _, err := runSMTP(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no IPv6 server") {
		t.Errorf("IPv6 clients without an IPv6 server: %v", err)
	}
	for _, c := range []struct{ in, want string }{
		{"", "give the MTA"},
		{"mx.test:25", `"mx.test:25"`},
		{"192.0.2.1:25,192.0.2.2:25", "two addresses of the same family"},
	} {
		if _, _, err := parseServers(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseServers(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
	v4, v6, err := parseServers("192.0.2.25:2525, [2001:db8::25]:2525")
	if err != nil || v4 != "192.0.2.25:2525" || v6 != "[2001:db8::25]:2525" {
		t.Errorf("parseServers: %q %q %v", v4, v6, err)
	}
}

func TestReadReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		code int
		err  string
	}{
		{"220 ok\r\n", 220, ""},
		{"250-a\r\n250-b\r\n250 c\r\n", 250, ""},
		{"220-pre\r\n521 bye\r\n", 521, ""},
		{"250\r\n", 250, ""},
		{"25 x\r\n", 0, "malformed"},
		{"abc def\r\n", 0, "malformed"},
		{"250_x\r\n", 0, "malformed"},
		{"250-a\r\n", 0, "EOF"},
	} {
		code, err := readReply(bufio.NewReader(strings.NewReader(c.in)))
		if code != c.code || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("readReply(%q) = %d, %v; want %d, %q", c.in, code, err, c.code, c.err)
		}
	}
}

func TestCLISMTPJSONWithCPU(t *testing.T) {
	mta := startFakeMTA(t, "tcp", "127.0.0.1:0", func(a netip.Addr) (smtpStage, int) {
		if loopbackListed.Contains(a) {
			return smtpBanner, 554
		}
		return 0, 0
	})
	code, out, errOut := runCmd(t, context.Background(), cliEnv{}, "smtp", "-json", "-n", "20", "-c", "2", "-listed", "0.5",
		"-listed-net", "127.0.0.0/24", "-clean-net", "127.0.1.0/24", "-cpu", "self="+strconv.Itoa(os.Getpid()), mta.ln.Addr().String())
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rep smtpReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if rep.Sessions != 20 || rep.Listed.Refused != 10 || rep.Clean.Accepted != 10 || rep.CPU["self"] == nil {
		t.Errorf("report %+v; want 10 refused, 10 accepted and a cpu entry", rep)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"smtp", "-cpu", "postfix", "127.0.0.1:1"}, `-cpu "postfix"`},
		{[]string{"smtp", "-c", "0", "127.0.0.1:1"}, "-c 0"},
		{[]string{"smtp", "localhost:25"}, `"localhost:25"`},
		{[]string{"smtp", "-cpu", "x=999999999", "127.0.0.1:1"}, "-cpu x=999999999"},
	} {
		code, _, errOut := runCmd(t, context.Background(), cliEnv{}, bad.args...)
		if code != exitUsage || !strings.Contains(errOut, bad.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", bad.args, code, errOut, bad.want)
		}
	}
}
