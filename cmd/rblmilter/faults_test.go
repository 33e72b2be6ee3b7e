package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// daemonBudget is the timeout key of the fault tests' config.
const daemonBudget = 400 * time.Millisecond

// faultConfig writes a config with one list (bl.test, no health probes:
// a probe would switch a lying list off, which is the health monitor's
// business, not this test's) and the given resolvers.
func faultConfig(t *testing.T, dir, sock string, resolvers ...string) string {
	t.Helper()
	path := filepath.Join(dir, "rblmilter.toml")
	text := fmt.Sprintf(`listen = "unix:%s"
resolvers = ["%s"]
timeout = %q
skip = []

[[list]]
zone = %q
monitor = false

[metrics]
listen = "127.0.0.1:0"
`, sock, strings.Join(resolvers, `", "`), daemonBudget.String(), testZone)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var decisionLine = regexp.MustCompile(`msg=decision ip=(\S+) decision=(\S+) .* duration=(\S+)`)

// decisionTimes returns the logged decision duration of each client.
func decisionTimes(t *testing.T, log string) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for _, m := range decisionLine.FindAllStringSubmatch(log, -1) {
		d, err := time.ParseDuration(m[3])
		if err != nil {
			t.Fatalf("duration %q: %v", m[3], err)
		}
		out[m[1]] = d
	}
	return out
}

// metricValue reads one series from a Prometheus text page; -1 if absent.
func metricValue(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// The running daemon under DNS faults, each on its own clients: every
// client is accepted (fail open), within the timeout, the failures show in
// /metrics by outcome, /readyz stays ready, and a listed client is still
// rejected afterwards.
func TestDaemonUnderDNSFaults(t *testing.T) {
	d := newDNSBL(t)
	faults := []struct {
		name    string
		opts    []rbltest.Option
		outcome string
	}{
		{"silent", []rbltest.Option{rbltest.Silent()}, "timeout"},
		{"SERVFAIL", []rbltest.Option{rbltest.Rcode(dns.RcodeServerFailure)}, "error"},
		{"REFUSED", []rbltest.Option{rbltest.Rcode(dns.RcodeRefused)}, "error"},
		{"garbage", []rbltest.Option{rbltest.Garbage([]byte("\x00\x01not DNS at all"))}, "error"},
		{"spoofed listing, wrong ID", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.WrongID()}, "timeout"},
		{"spoofed listing, wrong question", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.Mismatch()}, "error"},
		{"truncated, TCP refused", []rbltest.Option{rbltest.A("127.0.0.2"), rbltest.Truncate(), rbltest.TCPRcode(dns.RcodeRefused)}, "error"},
		{"operator error code", []rbltest.Option{rbltest.A("127.255.255.254")}, "refused"},
		{"answer outside 127/8", []rbltest.Option{rbltest.A("127.0.0.2", "198.51.100.1")}, "bogus"},
	}
	const perFault = 4
	client := func(f, k int) string { return fmt.Sprintf("192.0.2.%d", 10*(f+1)+k) }
	for f, fault := range faults {
		for k := range perFault {
			d.Set(d.queryName(client(f, k)), fault.opts...)
		}
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	daemon := startInProcess(t, faultConfig(t, dir, sock, d.Addr()), sock)
	metrics := "http://" + daemon.log.addr(t, "metrics listening")

	var wg sync.WaitGroup
	for f, fault := range faults {
		for k := range perFault {
			ip := client(f, k)
			wg.Go(func() {
				act, err := tryConnect("unix", sock, ip)
				if err != nil || act.Code != gomilter.ActAccept {
					t.Errorf("%s: %s got %+v, %v; want ACCEPT", fault.name, ip, act, err)
				}
			})
		}
	}
	wg.Wait()

	times := decisionTimes(t, daemon.log.String())
	want := map[string]float64{}
	for f, fault := range faults {
		var durs []time.Duration
		for k := range perFault {
			dur, ok := times[client(f, k)]
			if !ok {
				t.Errorf("%s: no decision line for %s", fault.name, client(f, k))
				continue
			}
			durs = append(durs, dur)
			if dur > daemonBudget+faultOverrunDaemon {
				t.Errorf("%s: %s decided in %v, timeout %v", fault.name, client(f, k), dur, daemonBudget)
			}
		}
		t.Logf("%s: decisions in %v", fault.name, durs)
		want[fault.outcome] += perFault
	}
	// Lookups cut short by the timeout are counted when they end.
	err := testutil.Poll(waitTimeout, 10*time.Millisecond, func() error {
		_, page := testutil.Get(t, nil, metrics+"/metrics")
		for outcome, n := range want {
			series := fmt.Sprintf(`rblmilter_lookups_total{check="ip",list=%q,outcome=%q}`, testZone, outcome)
			if got := metricValue(page, series); got != n {
				return fmt.Errorf("%s = %v, want %v", series, got, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := testutil.Get(t, nil, metrics+"/readyz"); code != 200 {
		t.Errorf("/readyz after the faults: %d %s", code, body)
	}
	d.list("192.0.2.200")
	if act := connectAs(t, "unix", sock, "192.0.2.200"); !isReject(act) {
		t.Errorf("after the faults, a listed client: %+v", act)
	}
	if code := daemon.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// faultOverrunDaemon bounds each decision beyond the timeout. The tighter
// bound (50 ms, against a timer woken at the same time, so that a loaded
// machine does not fail it) is in package rbl's fault suite.
const faultOverrunDaemon = time.Second

// Every resolver down (connection refused): clients are accepted at once,
// and once a resolver is back the daemon answers again.
func TestDaemonAllResolversDown(t *testing.T) {
	a, b := newDNSBL(t), newDNSBL(t)
	a.Stop()
	b.Stop()
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	daemon := startInProcess(t, faultConfig(t, dir, sock, a.Addr(), b.Addr()), sock)
	for k := range 4 {
		ip := fmt.Sprintf("192.0.2.%d", k+1)
		start := time.Now()
		if act := connectAs(t, "unix", sock, ip); act.Code != gomilter.ActAccept {
			t.Errorf("%s with every resolver down: %+v", ip, act)
		}
		if took := time.Since(start); took > daemonBudget+faultOverrunDaemon {
			t.Errorf("%s took %v", ip, took)
		}
	}
	daemon.log.wait(t, "msg=decision", "ip=192.0.2.4", "problems=bl.test:error")
	b.Start()
	b.list("192.0.2.9")
	if act := connectAs(t, "unix", sock, "192.0.2.9"); !isReject(act) {
		t.Errorf("with a resolver back, a listed client: %+v", act)
	}
	daemon.stop(t, syscall.SIGTERM)
}
