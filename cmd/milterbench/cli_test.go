package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/socketspec"
	"github.com/rblmilter/rblmilter/internal/testutil"
)

func runCmd(t *testing.T, ctx context.Context, env cliEnv, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb testutil.Buffer
	env.stdout, env.stderr = &out, &errb
	code = runCLI(ctx, args, env)
	return code, out.String(), errb.String()
}

func TestCLIUsage(t *testing.T) {
	if code, out, _ := runCmd(t, context.Background(), cliEnv{}, "-h"); code != exitOK || !strings.Contains(out, "milterbench run") {
		t.Errorf("-h: exit %d, output %q", code, out)
	}
	if code, _, errOut := runCmd(t, context.Background(), cliEnv{}); code != exitUsage || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no args: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, context.Background(), cliEnv{}, "bogus"); code != exitUsage || !strings.Contains(errOut, `unknown command "bogus"`) {
		t.Errorf("bogus: exit %d, stderr %q", code, errOut)
	}
	for _, cmd := range []string{"run", "dns", "null", "smtp"} {
		code, _, errOut := runCmd(t, context.Background(), cliEnv{}, cmd, "-h")
		if code != exitOK || !strings.Contains(errOut, "Usage: milterbench "+cmd) {
			t.Errorf("%s -h: exit %d, stderr %q", cmd, code, errOut)
		}
	}
}

func TestCLIBadInputNamesTheValue(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-listed", "1.5", "inet:127.0.0.1:1"}, `-listed "1.5"`},
		{[]string{"run", "-ipv6", "x", "inet:127.0.0.1:1"}, `-ipv6 "x"`},
		{[]string{"run", "tcp:1.2.3.4:5"}, `socket "tcp:1.2.3.4:5"`},
		{[]string{"run", "-stage", "data", "inet:127.0.0.1:1"}, `-stage "data"`},
		{[]string{"run", "-c", "0", "inet:127.0.0.1:1"}, "-c 0"},
		{[]string{"run", "-stage", "eom", "-header", "X-RBL score=0", "inet:127.0.0.1:1"}, `-header "X-RBL score=0": want "Name: value"`},
		{[]string{"run", "-header", "X-RBL: score=0", "inet:127.0.0.1:1"}, "-header needs -stage eom"},
		{[]string{"run", "-listed-net", "198.18.0.0", "inet:127.0.0.1:1"}, `"198.18.0.0" is not a CIDR`},
		{[]string{"run", "-pprof", "127.0.0.1:9890", "inet:127.0.0.1:1"}, `-pprof "127.0.0.1:9890"`},
		{[]string{"run", "-actions", "zz", "inet:127.0.0.1:1"}, `-actions "zz"`},
		{[]string{"run", "a", "b"}, "one SOCKET argument"},
		{[]string{"null", "-verdict", "maybe"}, `-verdict "maybe"`},
		{[]string{"null", "-listen", "inet:nope"}, `socket "inet:nope"`},
		{[]string{"null", "-refuse", "198.18.0.0"}, `-refuse: "198.18.0.0" is not a CIDR`},
		{[]string{"dns", "-loss", "2"}, `-loss "2"`},
		{[]string{"dns", "-answer", "::1"}, `-answer "::1"`},
		{[]string{"dns", "-listen", "nope"}, `-listen "nope"`},
		{[]string{"dns", "-zone", "a.test colour=red"}, "unknown key"},
		{[]string{"dns", "-zones", "a.test,A.test"}, "given twice"},
	} {
		code, _, errOut := runCmd(t, context.Background(), cliEnv{}, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
}

func TestCLIRunJSONWithProfileAndPID(t *testing.T) {
	target, connects := startNullMilter(t, unixSpec(t), milter.RespAccept)
	var profQuery atomic.Value
	pprofSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" {
			http.NotFound(w, r)
			return
		}
		profQuery.Store(r.URL.RawQuery)
		io.WriteString(w, "fake profile")
	}))
	defer pprofSrv.Close()
	profFile := filepath.Join(t.TempDir(), "cpu.pprof")

	code, out, errOut := runCmd(t, context.Background(), cliEnv{}, "run", "-n", "60", "-c", "3", "-listed", "50%", "-json",
		"-pid", "1", "-pprof", pprofSrv.URL+"/debug/pprof/", "-pprof-seconds", "2", "-pprof-out", profFile, target.String())
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	var rep struct {
		Sessions uint64             `json:"sessions"`
		Verdicts map[string]uint64  `json:"verdicts"`
		Listed   classTally         `json:"listed"`
		Latency  map[string]float64 `json:"session_latency"`
		Target   *processReport     `json:"target_process"`
		Profile  *profileReport     `json:"profile"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out)
	}
	if rep.Sessions != 60 || rep.Verdicts["accept"] != 60 || rep.Listed.Sent != 30 || connects.Load() != 60 {
		t.Errorf("report %+v, milter connects %d", rep, connects.Load())
	}
	if _, ok := rep.Latency["p99_ms"]; !ok {
		t.Errorf("session_latency %v lacks p99_ms", rep.Latency)
	}
	if rep.Target == nil || rep.Target.PID != 1 {
		t.Errorf("target process %+v, want pid 1", rep.Target)
	}
	if b, _ := os.ReadFile(profFile); string(b) != "fake profile" || rep.Profile == nil || rep.Profile.Error != "" || profQuery.Load() != "seconds=2" {
		t.Errorf("profile %+v, file %q, query %v", rep.Profile, b, profQuery.Load())
	}
}

func TestCLIRunTextAndExitStatus(t *testing.T) {
	target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter {
		return nullMilter{verdict: milter.RespAccept, connects: new(atomic.Uint64)}
	})
	code, out, _ := runCmd(t, context.Background(), cliEnv{}, "run", "-n", "20", "-socket", target.String())
	for _, want := range []string{"sessions     20", "throughput", "session      p50", "verdicts     accept 20", "errors       0"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if code != exitOK {
		t.Errorf("exit %d, want 0", code)
	}
	code, out, _ = runCmd(t, context.Background(), cliEnv{}, "run", "-n", "5", unixSpec(t))
	if code != exitFail || !strings.Contains(out, "errors       5 (dial 5)") {
		t.Errorf("failing run: exit %d, output\n%s", code, out)
	}
}

func TestProfileURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:9890/debug/pprof/":        "http://127.0.0.1:9890/debug/pprof/profile?seconds=5",
		"http://127.0.0.1:9890/debug/pprof":         "http://127.0.0.1:9890/debug/pprof/profile?seconds=5",
		"http://127.0.0.1:9890":                     "http://127.0.0.1:9890/debug/pprof/profile?seconds=5",
		"http://h:1/debug/pprof/profile?seconds=30": "http://h:1/debug/pprof/profile?seconds=5",
	} {
		if got, err := profileURL(in, 5); err != nil || got != want {
			t.Errorf("profileURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestReadProc(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	// The command name may hold spaces and parentheses.
	for name, content := range map[string]string{
		"stat":   "42 (rbl (milter)) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 1 1 1\n",
		"status": "Name:\trbl\nVmRSS:\t   20480 kB\nThreads:\t9\n",
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := readProc(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	if s.cpu.Seconds() != 2 || s.rssKiB != 20480 || s.threads != 9 {
		t.Errorf("sample %+v, want 2s cpu, 20480 KiB, 9 threads", s)
	}
	if _, err := readProc(root, 7); err == nil || !strings.Contains(err.Error(), "-pid 7") {
		t.Errorf("missing pid: %v", err)
	}
}

func TestCLINullServesUntilCancelled(t *testing.T) {
	sock := unixSpec(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCmd(t, ctx, cliEnv{ready: func(a string) { ready <- a }}, "null", "-listen", sock, "-verdict", "reject")
		done <- result{code, out, errOut}
	}()
	bound := <-ready
	spec, _ := socketspec.Parse(bound)
	res, err := runLoad(context.Background(), baseConfig(spec, testMix(t, "0", "0", "0", 0), 7))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdicts["reject"] != 7 {
		t.Errorf("verdicts %v, want 7 rejects", res.Verdicts)
	}
	cancel()
	r := <-done
	if r.code != exitOK || !strings.Contains(r.out, "connects 7") {
		t.Errorf("null: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if _, err := os.Stat(strings.TrimPrefix(sock, "unix:")); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestCLINullRefusesClientsInRefuse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		code, _, _ := runCmd(t, ctx, cliEnv{ready: func(a string) { ready <- a }}, "null", "-listen", unixSpec(t), "-refuse", "198.18.0.0/16,2001:2:0:1::/64")
		done <- code
	}()
	spec, _ := socketspec.Parse(<-ready)
	rep, err := runLoad(context.Background(), baseConfig(spec, testMix(t, "0.5", "0", "0.5", 0), 40))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("null: exit %d", code)
	}
	clean, listed := rep.Class[0], rep.Class[1]
	if listed.Sent == 0 || listed.Verdicts["reply 554"] != listed.Sent || clean.Sent == 0 || clean.Verdicts["accept"] != clean.Sent || rep.Sessions != 40 {
		t.Errorf("listed %+v, clean %+v, sessions %d: want the listed ones refused with 554, the clean ones accepted", listed, clean, rep.Sessions)
	}
}

func TestCLIDNSStatsOverHTTPAndSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 2)
	usr1 := make(chan os.Signal, 1)
	var out, errb testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runCLI(ctx, []string{"dns", "-listen", "127.0.0.1:0", "-stats", "127.0.0.1:0", "-zones", "a.test,b.test",
			"-zone", "b.test answer=127.0.0.10", "-zone", "c.test listed=none", "-json"},
			cliEnv{stdout: &out, stderr: &errb, usr1: usr1, ready: func(a string) { ready <- a }})
	}()
	statsAddr := strings.TrimPrefix(<-ready, "stats ")
	dnsAddr := <-ready

	if r := query(t, dnsAddr, "udp", dnsblName(t, "198.18.0.9", "b.test"), dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.10" {
		t.Errorf("b.test answer %v, want 127.0.0.10", r.Answer)
	}
	if r := query(t, dnsAddr, "tcp", dnsblName(t, "198.18.0.9", "c.test"), dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("c.test (listed=none) rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	query(t, dnsAddr, "udp", dnsblName(t, "198.19.0.9", "a.test"), dns.TypeA)

	resp, err := http.Get("http://" + statsAddr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st dnsStats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Queries != 3 || st.Zones["a.test"].NXDomain != 1 || st.Zones["b.test"].Listed != 1 || st.Zones["c.test"].Queries != 1 {
		t.Errorf("/stats %+v, %v", st, err)
	}

	usr1 <- syscall.SIGUSR1
	testutil.WaitFor(t, "counters on stderr after SIGUSR1", func() bool { return strings.Contains(errb.String(), "dns queries 3") })

	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("dns exit %d, stderr %q", code, errb.String())
	}
	var final dnsStats
	if err := json.Unmarshal([]byte(out.String()), &final); err != nil || final.Queries != 3 {
		t.Errorf("final stats %q: %v", out.String(), err)
	}
}

// fakeMetrics serves a Prometheus page whose goroutine count follows
// values, one per request, staying at the last.
func fakeMetrics(t *testing.T, values ...int) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(values)-1)
		fmt.Fprintf(w, "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", values[i])
		fmt.Fprintf(w, "process_resident_memory_bytes 2.097152e+07\nrbl_cache_entries{list=\"a.test\"} 42\nrbl_cache_entries_total 7\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestScrapeMetrics(t *testing.T) {
	srv := fakeMetrics(t, 12)
	got, err := scrapeMetrics(context.Background(), http.DefaultClient, srv.URL, []string{"go_goroutines", "process_resident_memory_bytes", "rbl_cache_entries"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 12, "process_resident_memory_bytes": 20971520, `rbl_cache_entries{list="a.test"}`: 42}
	if !maps.Equal(got, want) {
		t.Errorf("scraped %v, want %v", got, want)
	}
	if _, err := scrapeMetrics(context.Background(), http.DefaultClient, srv.URL, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "no metric nope") {
		t.Errorf("missing metric: %v", err)
	}
}

func TestCLIRunWaitsForGoroutinesToSettle(t *testing.T) {
	target := startMilter(t, "inet:127.0.0.1:0", func() milter.Milter {
		return nullMilter{verdict: milter.RespAccept, connects: new(atomic.Uint64)}
	})
	// before, before (after warm-up), after the run, then two polls
	srv := fakeMetrics(t, 10, 10, 50, 30, 10)
	code, out, errOut := runCmd(t, context.Background(), cliEnv{}, "run", "-n", "10", "-metrics", srv.URL, "-metric", "rbl_cache_entries", "-json", target.String())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Metrics metricsReport `json:"target_metrics"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	m := rep.Metrics
	if m.Before["go_goroutines"] != 10 || m.After["go_goroutines"] != 50 || m.Settled["go_goroutines"] != 10 || m.SettleSeconds == nil ||
		m.After[`rbl_cache_entries{list="a.test"}`] != 42 {
		t.Errorf("metrics %+v", m)
	}
	var text strings.Builder
	m.writeText(&text)
	if !strings.Contains(text.String(), "go_goroutines 10 -> 50 -> 10 (back to baseline after") || !strings.Contains(text.String(), "20.0MiB") {
		t.Errorf("text:\n%s", text.String())
	}

	// A target that never settles is reported, not waited for forever.
	stuck := fakeMetrics(t, 10, 10, 50)
	code, out, _ = runCmd(t, context.Background(), cliEnv{}, "run", "-n", "5", "-metrics", stuck.URL, "-settle", "300ms", target.String())
	if code != exitOK || !strings.Contains(out, "go_goroutines 10 -> 50 -> 50 (NOT back to baseline)") {
		t.Errorf("stuck target: exit %d\n%s", code, out)
	}
	code, _, errOut = runCmd(t, context.Background(), cliEnv{}, "run", "-n", "5", "-metrics", stuck.URL, "-metric", "nope", target.String())
	if code != exitUsage || !strings.Contains(errOut, "no metric nope") {
		t.Errorf("unknown metric: exit %d, %s", code, errOut)
	}
}
