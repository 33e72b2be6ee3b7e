package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

func TestRunAgainstNullMilterTCP(t *testing.T) {
	target, connects := startNullMilter(t, "inet:127.0.0.1:0", milter.RespAccept)
	// Pool of 20 holds 2 listed addresses (indices 9 and 19), used 13 and
	// 12 times by the 250 repeated sessions; the 250 fresh ones hold 25.
	cfg := baseConfig(target, testMix(t, "0.1", "0.5", "0.3", 20), 500)
	cfg.Concurrency = 8
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Sessions != 500 || rep.Errors != 0 || !maps.Equal(rep.Verdicts, map[string]uint64{"accept": 500}) {
		t.Fatalf("sessions %d errors %d (%v) verdicts %v; want 500 accepted", rep.Sessions, rep.Errors, rep.ErrorSamples, rep.Verdicts)
	}
	if connects.Load() != 500 {
		t.Errorf("milter saw %d connects, want 500", connects.Load())
	}
	if rep.Listed.Sent != 50 || rep.Clean.Sent != 450 || rep.Mix.Repeated != 250 || rep.Mix.Fresh != 250 {
		t.Errorf("listed %d clean %d repeated %d fresh %d; want 50 450 250 250", rep.Listed.Sent, rep.Clean.Sent, rep.Mix.Repeated, rep.Mix.Fresh)
	}
	if rep.Mix.IPv4+rep.Mix.IPv6 != 500 || rep.Mix.IPv6 == 0 {
		t.Errorf("ipv4 %d ipv6 %d", rep.Mix.IPv4, rep.Mix.IPv6)
	}
	if res.sessionLat.Count() != 500 || res.decisionLat.Count() != 500 || rep.SessionLatency.Max < rep.Decision.P50 {
		t.Errorf("latency samples %d/%d, session max %v, decision p50 %v", res.sessionLat.Count(), res.decisionLat.Count(), rep.SessionLatency.Max, rep.Decision.P50)
	}
	if rep.Rate <= 0 || rep.ElapsedSeconds <= 0 {
		t.Errorf("rate %v over %vs", rep.Rate, rep.ElapsedSeconds)
	}
}

// dnsblMilter is a small real DNSBL milter: at connect it looks the client
// up in every zone on the test DNS server and rejects with 554 when any
// lists it. It records what the MTA side sent so the test can check the
// session looks like Postfix's.
type dnsblMilter struct {
	milter.NoOpMilter
	server string
	zones  []string
	seen   *sessionLog
}

type sessionLog struct {
	mu      sync.Mutex
	bad     []string // protocol details that differ from Postfix's
	clients map[netip.Addr]int
}

func (l *sessionLog) fail(what string, details ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) < 5 {
		l.bad = append(l.bad, what+": "+fmt.Sprint(details...))
	}
}

func (m dnsblMilter) Connect(host, family string, port uint16, addr net.IP, mod *milter.Modifier) (milter.Response, error) {
	ip, _ := netip.AddrFromSlice(addr)
	ip = ip.Unmap()
	if want := map[bool]string{true: "tcp6", false: "tcp4"}[ip.Is6()]; family != want {
		m.seen.fail("family", family, "for", ip)
	}
	if mod.Macros["{client_addr}"] != ip.String() || host != "["+ip.String()+"]" || mod.Macros["j"] != "mx.bench.test" || port < 1024 {
		m.seen.fail("connect info", host, port, mod.Macros)
	}
	m.seen.mu.Lock()
	m.seen.clients[ip]++
	m.seen.mu.Unlock()
	c := &dns.Client{Timeout: 10 * time.Second}
	for _, z := range m.zones {
		rev, _ := dns.ReverseAddr(ip.String())
		rev = strings.TrimSuffix(strings.TrimSuffix(rev, "in-addr.arpa."), "ip6.arpa.")
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion(rev+z, dns.TypeA), m.server)
		if err != nil {
			return milter.RespTempFail, nil
		}
		if len(r.Answer) > 0 {
			return milter.NewResponseStr(byte(milter.ActReplyCode), "554 5.7.1 listed in "+z), nil
		}
	}
	return milter.RespContinue, nil
}

func TestRunVerdictsMatchZonesUnix(t *testing.T) {
	dnsSrv, dnsAddr := startDNS(t, testZone(t, "a.test"), testZone(t, "b.test"))
	log := &sessionLog{clients: map[netip.Addr]int{}}
	target := startMilter(t, unixSpec(t), func() milter.Milter {
		return dnsblMilter{server: dnsAddr, zones: []string{"a.test.", "b.test."}, seen: log}
	})
	cfg := baseConfig(target, testMix(t, "0.25", "0", "0.5", 0), 400)
	cfg.Concurrency = 6
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Errors != 0 {
		t.Fatalf("%d errors: %v", rep.Errors, rep.ErrorSamples)
	}
	// Every listed address is rejected (on the first zone), every clean
	// one passes after asking both zones.
	if rep.Listed.Sent != 100 || !maps.Equal(rep.Listed.Verdicts, map[string]uint64{"reply 554": 100}) {
		t.Errorf("listed: sent %d, verdicts %v; want 100 rejected with 554", rep.Listed.Sent, rep.Listed.Verdicts)
	}
	if rep.Clean.Sent != 300 || !maps.Equal(rep.Clean.Verdicts, map[string]uint64{"continue": 300}) {
		t.Errorf("clean: sent %d, verdicts %v; want 300 continued", rep.Clean.Sent, rep.Clean.Verdicts)
	}
	want := dnsStats{Queries: 700, Zones: map[string]zoneStats{
		"a.test": {Queries: 400, A: 400, Listed: 100, NXDomain: 300},
		"b.test": {Queries: 300, A: 300, NXDomain: 300},
	}}
	if got := dnsSrv.stats(false); !equalStats(got, want) {
		t.Errorf("dns stats %+v, want %+v", got, want)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.bad) > 0 {
		t.Errorf("sessions differ from Postfix's: %v", log.bad)
	}
	if len(log.clients) != 400 || rep.Mix.IPv6 != 200 {
		t.Errorf("%d distinct clients (want 400 fresh), %d IPv6 (want 200)", len(log.clients), rep.Mix.IPv6)
	}
}

// rcptMilter continues at connect and decides at RCPT, as rblmilter does
// with stage = "rcpt".
type rcptMilter struct {
	milter.NoOpMilter
	listed []netip.Prefix
	seen   *sessionLog
	ip     *netip.Addr
	steps  *[]string
}

func (m rcptMilter) Connect(_ string, _ string, _ uint16, addr net.IP, _ *milter.Modifier) (milter.Response, error) {
	*m.ip, _ = netip.AddrFromSlice(addr)
	*m.ip = m.ip.Unmap()
	*m.steps = append(*m.steps, "connect")
	return milter.RespContinue, nil
}

func (m rcptMilter) Helo(name string, _ *milter.Modifier) (milter.Response, error) {
	*m.steps = append(*m.steps, "helo "+name)
	return milter.RespContinue, nil
}

func (m rcptMilter) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	*m.steps = append(*m.steps, "mail "+from+" auth="+mod.Macros["{auth_authen}"])
	return milter.RespContinue, nil
}

func (m rcptMilter) RcptTo(rcpt string, mod *milter.Modifier) (milter.Response, error) {
	*m.steps = append(*m.steps, "rcpt "+rcpt+" "+mod.Macros["{rcpt_addr}"])
	want := "connect,helo client.bench.test,mail sender@bench.test auth=bench,rcpt user@bench.test user@bench.test"
	if got := strings.Join(*m.steps, ","); got != want {
		m.seen.fail("steps", got)
	}
	if isListed(*m.ip, m.listed) {
		return milter.RespReject, nil
	}
	return milter.RespContinue, nil
}

func TestRunContinuesToRcpt(t *testing.T) {
	log := &sessionLog{clients: map[netip.Addr]int{}}
	listed, _ := parseNets("l", defaultListedNets)
	target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter {
		return rcptMilter{listed: listed, seen: log, ip: new(netip.Addr), steps: new([]string)}
	})
	cfg := baseConfig(target, testMix(t, "0.5", "0", "0", 0), 200)
	cfg.Stage = stageRcpt
	cfg.Auth = true
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Errors != 0 || !maps.Equal(rep.Verdicts, map[string]uint64{"reject": 100, "continue": 100}) ||
		!maps.Equal(rep.At, map[string]uint64{"rcpt": 200}) || rep.Listed.Verdicts["reject"] != 100 {
		t.Errorf("errors %d %v, verdicts %v at %v, listed %v; want 100 rejected and 100 continued at rcpt",
			rep.Errors, rep.ErrorSamples, rep.Verdicts, rep.At, rep.Listed.Verdicts)
	}
	if len(log.bad) > 0 {
		t.Errorf("milter saw: %v", log.bad)
	}
}

// eomMilter checks that a message arrives whole (the usual header fields,
// the -header ones, the body) and answers at end of message with a header
// added and the -header one deleted, as a milter that stamps messages does.
type eomMilter struct {
	milter.NoOpMilter
	headers *[]string
	body    *int
	bad     *sessionLog
}

func (m eomMilter) Header(name, value string, _ *milter.Modifier) (milter.Response, error) {
	*m.headers = append(*m.headers, name+": "+value)
	return milter.RespContinue, nil
}

func (m eomMilter) BodyChunk(chunk []byte, _ *milter.Modifier) (milter.Response, error) {
	*m.body += len(chunk)
	return milter.RespContinue, nil
}

func (m eomMilter) Body(mod *milter.Modifier) (milter.Response, error) {
	got := *m.headers
	if len(got) != len(benchHeaders)+1 || got[len(got)-1] != "X-Forged: score=0" || got[1] != "From: <sender@bench.test>" || *m.body != len(benchBody) {
		m.bad.fail("message", fmt.Sprintf("headers %q, body %d bytes", got, *m.body))
	}
	if err := mod.ChangeHeader(1, "X-Forged", ""); err != nil {
		return nil, err
	}
	if err := mod.AddHeader("X-Stamp", "ok"); err != nil {
		return nil, err
	}
	return milter.RespContinue, nil
}

func TestRunSendsMessagesToEndOfMessage(t *testing.T) {
	log := &sessionLog{clients: map[netip.Addr]int{}}
	target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter {
		return eomMilter{headers: new([]string), body: new(int), bad: log}
	})
	cfg := baseConfig(target, testMix(t, "0", "0", "0", 0), 50)
	cfg.Stage = stageEOM
	cfg.Headers = [][2]string{{"X-Forged", "score=0"}}
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Errors != 0 || !maps.Equal(rep.Verdicts, map[string]uint64{"continue": 50}) || !maps.Equal(rep.At, map[string]uint64{"eom": 50}) ||
		!maps.Equal(rep.Mods, map[string]uint64{"add header": 50, "delete header": 50}) {
		t.Errorf("errors %d %v, verdicts %v at %v, modifications %v; want 50 continued at eom, each with a header added and one deleted",
			rep.Errors, rep.ErrorSamples, rep.Verdicts, rep.At, rep.Mods)
	}
	if len(log.bad) > 0 {
		t.Errorf("milter saw: %v", log.bad)
	}
}

// A verdict at connect ends the session before HELO even with -stage rcpt.
func TestRunStopsAtFinalVerdict(t *testing.T) {
	target, _ := startNullMilter(t, "inet:127.0.0.1:0", milter.RespTempFail)
	cfg := baseConfig(target, testMix(t, "0", "0", "0", 0), 30)
	cfg.Stage = stageRcpt
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep := res.report(); !maps.Equal(rep.Verdicts, map[string]uint64{"tempfail": 30}) || !maps.Equal(rep.At, map[string]uint64{"connect": 30}) {
		t.Errorf("verdicts %v at %v, want 30 tempfail at connect", rep.Verdicts, rep.At)
	}
}

// brokenMilter fails the CONNECT step, which makes go-milter drop the
// connection without a reply.
type brokenMilter struct{ milter.NoOpMilter }

func (brokenMilter) Connect(string, string, uint16, net.IP, *milter.Modifier) (milter.Response, error) {
	return nil, errors.New("broken on purpose")
}

func TestRunCountsErrors(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		spec, _ := socketspec.ParseListen(unixSpec(t))
		res, err := runLoad(context.Background(), baseConfig(spec, testMix(t, "0.1", "0", "0", 0), 40))
		if err != nil {
			t.Fatal(err)
		}
		rep := res.report()
		if rep.Errors != 40 || rep.Sessions != 0 || !maps.Equal(rep.ErrorKinds, map[string]uint64{"dial": 40}) ||
			rep.Listed.Errors != 4 || len(rep.ErrorSamples) != 1 {
			t.Errorf("errors %d kinds %v listed errors %d samples %v; want 40 dial errors, 4 of them listed", rep.Errors, rep.ErrorKinds, rep.Listed.Errors, rep.ErrorSamples)
		}
	})
	t.Run("milter drops the connection", func(t *testing.T) {
		target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter { return brokenMilter{} })
		res, err := runLoad(context.Background(), baseConfig(target, testMix(t, "0", "0", "0", 0), 3))
		if err != nil {
			t.Fatal(err)
		}
		if rep := res.report(); rep.Errors != 3 || !maps.Equal(rep.ErrorKinds, map[string]uint64{"connect": 3}) {
			t.Errorf("errors %d kinds %v, want 3 connect errors", rep.Errors, rep.ErrorKinds)
		}
	})
	t.Run("milter never answers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range held {
				c.Close()
			}
		}()
		cfg := baseConfig(socketspec.Spec{Network: "tcp", Address: ln.Addr().String()}, testMix(t, "0", "0", "0", 0), 3)
		cfg.Timeout = 20 * time.Millisecond
		res, err := runLoad(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep := res.report(); !maps.Equal(rep.ErrorKinds, map[string]uint64{"negotiate timeout": 3}) {
			t.Errorf("error kinds %v, want 3 negotiate timeouts", rep.ErrorKinds)
		}
	})
}

func TestRunWarmupIsNotCounted(t *testing.T) {
	target, connects := startNullMilter(t, "inet:127.0.0.1:0", milter.RespAccept)
	cfg := baseConfig(target, testMix(t, "0.1", "1", "0", 10), 100)
	cfg.Warmup = true
	started := false
	cfg.OnStart = func() { started = connects.Load() == 10 }
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Warmup == nil || rep.Warmup.Sessions != 10 || rep.Sessions != 100 || connects.Load() != 110 || !started {
		t.Errorf("warm-up %+v, measured %d, milter connects %d, warm-up done before start %v; want 10 + 100",
			rep.Warmup, rep.Sessions, connects.Load(), started)
	}
}

func TestRunByDuration(t *testing.T) {
	target, connects := startNullMilter(t, "inet:127.0.0.1:0", milter.RespAccept)
	cfg := baseConfig(target, testMix(t, "0", "0", "0", 0), 0)
	cfg.Duration = 50 * time.Millisecond
	res, err := runLoad(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.report()
	if rep.Sessions == 0 || rep.Errors != 0 || rep.Sessions != connects.Load() || res.Elapsed < cfg.Duration {
		t.Errorf("sessions %d errors %d connects %d elapsed %v", rep.Sessions, rep.Errors, connects.Load(), res.Elapsed)
	}
}

func TestRunInterrupted(t *testing.T) {
	target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter {
		return nullMilter{verdict: milter.RespAccept, connects: new(atomic.Uint64)}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := runLoad(ctx, baseConfig(target, testMix(t, "0", "0", "0", 0), 1000))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Sessions != 0 {
		t.Errorf("interrupted %v sessions %d, want an interrupted run with no sessions", res.Interrupted, res.Sessions)
	}
}

func TestRunConfigErrors(t *testing.T) {
	spec, _ := socketspec.Parse("inet:127.0.0.1:1")
	cfg := baseConfig(spec, testMix(t, "0", "0", "0", 0), 0)
	if _, err := runLoad(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "-duration") {
		t.Errorf("no bound: error %v", err)
	}
	cfg.Sessions, cfg.Concurrency = 1, 0
	if _, err := runLoad(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "-c 0") {
		t.Errorf("-c 0: error %v", err)
	}
}

// TestReportNames: the words the report counts replies and modifications
// by, including the ones that depend on more than the code.
func TestReportNames(t *testing.T) {
	for _, c := range []struct {
		act  milter.Action
		want string
	}{
		{milter.Action{Code: milter.ActAccept}, "accept"},
		{milter.Action{Code: milter.ActContinue}, "continue"},
		{milter.Action{Code: milter.ActReject}, "reject"},
		{milter.Action{Code: milter.ActTempFail}, "tempfail"},
		{milter.Action{Code: milter.ActDiscard}, "discard"},
		{milter.Action{Code: milter.ActReplyCode, SMTPCode: 554}, "reply 554"},
		{milter.Action{Code: 'z'}, "code 'z'"},
	} {
		if got := verdictName(&c.act); got != c.want {
			t.Errorf("verdictName(%q) = %q, want %q", c.act.Code, got, c.want)
		}
	}
	for _, c := range []struct {
		mod  milter.ModifyAction
		want string
	}{
		{milter.ModifyAction{Code: milter.ActAddHeader, HeaderValue: "v"}, "add header"},
		{milter.ModifyAction{Code: milter.ActChangeHeader, HeaderValue: "v"}, "change header"},
		{milter.ModifyAction{Code: milter.ActChangeHeader}, "delete header"},
		{milter.ModifyAction{Code: milter.ActQuarantine}, "quarantine"},
		{milter.ModifyAction{Code: 'z'}, "code 'z'"},
	} {
		if got := modName(c.mod); got != c.want {
			t.Errorf("modName(%q, %q) = %q, want %q", c.mod.Code, c.mod.HeaderValue, got, c.want)
		}
	}
}
