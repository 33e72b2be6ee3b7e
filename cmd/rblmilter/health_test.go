package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// v6TestEntry is the RFC 5782 IPv6 test entry ::ffff:7f00:2 as nibbles.
const v6TestEntry = "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."

// serveTestEntries makes zone answer its RFC 5782 test entries like an
// honest list.
func serveTestEntries(srv *rbltest.Server, zone string) {
	srv.Set(rbl.QueryName(mustAddr("127.0.0.2"), zone), rbltest.A("127.0.0.2"))
	srv.Set(v6TestEntry+zone, rbltest.A("127.0.0.2"))
}

// healthConfig writes a config with three lists on d's server: bl.test
// (listing what d lists), sick.test and quiet.test (monitor = false).
func healthConfig(t *testing.T, d *dnsbl, listen, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	text := fmt.Sprintf(`listen = %q
resolvers = [%q]
skip = []
timeout = "2s"
%s

[[list]]
zone = "bl.test"

[[list]]
zone = "sick.test"
timeout = "500ms"

[[list]]
zone = "quiet.test"
monitor = false

[metrics]
listen = "127.0.0.1:0"
`, listen, d.Addr(), extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckShowsListHealth(t *testing.T) {
	d := newDNSBL(t, "1.2.3.4")
	serveTestEntries(d.Server, "bl.test")
	// sick.test's operator refuses us: every answer is an error code.
	d.Set(rbl.QueryName(mustAddr("127.0.0.2"), "sick.test"), rbltest.A("127.255.255.254"))
	cfg := healthConfig(t, d, "inet:127.0.0.1:8890", "")

	code, out, errOut := runCLI(t, "check", "-config", cfg, "1.2.3.4")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 5 || !testutil.ContainsAll(lines[1], []string{"LIST", "HEALTH", "OUTCOME"}...) {
		t.Fatalf("no HEALTH column:\n%s", out)
	}
	for _, want := range [][]string{
		{"bl.test", "healthy", "listed", "127.0.0.2"},
		{"sick.test", "unhealthy", "disabled", "health: answers an operator error code", "answer: 127.0.0.2 → A 127.255.255.254"},
		{"quiet.test", "unmonitored", "not_listed", "health: not probed (monitor = false)"},
	} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(strings.TrimSpace(l), want[0]) && testutil.ContainsAll(l, want...)
		}
		if !found {
			t.Errorf("no line with %q:\n%s", want, out)
		}
	}
	if n := d.Queries(rbl.QueryName(mustAddr("192.0.2.1"), "sick.test")); n != 0 {
		t.Errorf("the unhealthy list was asked about the client %d times", n)
	}

	code, out, errOut = runCLI(t, "check", "-config", cfg, "-json", "192.0.2.2")
	var reports []checkReport
	if err := json.Unmarshal([]byte(out), &reports); code != 0 || err != nil || len(reports) != 1 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	got := map[string]string{}
	for _, l := range reports[0].Lists {
		got[l.Name] = l.Health + "/" + l.Outcome
	}
	if got["bl.test"] != "healthy/not_listed" || got["sick.test"] != "unhealthy/disabled" || got["quiet.test"] != "unmonitored/not_listed" {
		t.Errorf("%v", got)
	}
}

func TestDaemonListHealth(t *testing.T) {
	d := newDNSBL(t, "192.0.2.1")
	serveTestEntries(d.Server, "bl.test")
	serveTestEntries(d.Server, "sick.test")
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	// A short interval (1s, the least allowed) stands in for 5 minutes;
	// the test polls with a deadline, it never sleeps.
	cfg := healthConfig(t, d, "unix:"+sock, `health_interval = "1s"`)
	dm := startInProcess(t, cfg, sock)
	metrics := "http://" + dm.log.addr(t, "metrics listening")

	waitBody := func(what string, parts ...string) string {
		t.Helper()
		code, body := waitPage(t, metrics+"/readyz", dm.log, parts...)
		if code != 200 {
			t.Fatalf("/readyz at %s: %d %q", what, code, body)
		}
		return body
	}
	body := waitBody("the first round", `list "bl.test": healthy`, `list "sick.test": healthy`)
	if !strings.HasPrefix(body, "ready\n") || !strings.Contains(body, `list "quiet.test": unmonitored`) {
		t.Errorf("/readyz:\n%s", body)
	}

	// sick.test starts listing the world.
	d.Set(rbl.QueryName(mustAddr("127.0.0.1"), "sick.test"), rbltest.A("127.0.0.2"))
	body = waitBody("sick.test unhealthy", `list "sick.test": unhealthy (lists the world`, "answer: 127.0.0.1 → A 127.0.0.2", "not counted")
	if !strings.Contains(body, `list "bl.test": healthy`) {
		t.Errorf("bl.test caught it:\n%s", body)
	}
	// A client only sick.test lists is not refused for it.
	d.Set(rbl.QueryName(mustAddr("192.0.2.50"), "sick.test"), rbltest.A("127.0.0.2"))
	if act := connectAs(t, "unix", sock, "192.0.2.50"); act.Code != gomilter.ActAccept {
		t.Errorf("client listed only by the sick list: %+v", act)
	}
	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Errorf("client listed by the healthy list: %+v", act)
	}
	_, scrape := testutil.Get(t, nil, metrics+"/metrics")
	for _, want := range []string{
		`rblmilter_list_health_state{list="sick.test",state="unhealthy"} 1`,
		`rblmilter_list_health_state{list="bl.test",state="healthy"} 1`,
		`rblmilter_lookups_total{check="ip",list="sick.test",outcome="disabled"} 2`,
		`rblmilter_list_health_transitions_total{list="sick.test",state="unhealthy"} 1`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// It recovers, and is counted again.
	d.Delete(rbl.QueryName(mustAddr("127.0.0.1"), "sick.test"))
	waitBody("sick.test healthy again", `list "sick.test": healthy`)
	if act := connectAs(t, "unix", sock, "192.0.2.50"); !isReject(act) {
		t.Errorf("client listed by the recovered list: %+v", act)
	}
	if n := dm.log.count("list unhealthy", "list=sick.test", "level=ERROR"); n != 1 {
		t.Errorf("%d transition lines, want 1:\n%s", n, dm.log)
	}
	if n := dm.log.count("list healthy again", "list=sick.test", "level=WARN"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, dm.log)
	}
}

func TestConfigureHealthWarnsAboutPublicResolver(t *testing.T) {
	// The daemon's wiring, without running it: no probe is sent, so
	// nothing ever goes to 8.8.8.8.
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	text := `resolvers = ["127.0.0.1:53", "8.8.8.8"]
sites = ["zen.spamhaus.org=127.0.0.[2..11]"]
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, "", testParseEnv())
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogWatch()
	d := &daemon{logger: slog.New(slog.NewTextHandler(logs, nil)), registry: prometheus.NewRegistry()}
	if err := d.startEngineObservers(); err != nil {
		t.Fatal(err)
	}
	checker, err := d.newChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	d.configureHealth(cfg, checker)
	if n := logs.count("level=WARN", "public DNS resolver", "resolvers=8.8.8.8:53", "lists=zen.spamhaus.org"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	if st := d.listHealth(); len(st) != 1 || st[0].Name != "zen.spamhaus.org" || st[0].State != rbl.HealthUnknown {
		t.Errorf("monitor not configured: %+v", st)
	}
}

func TestCheckShowsHealthEvidenceAndBudget(t *testing.T) {
	// The client is public unicast so that no canary drawn from the
	// reserved ranges can hit bl.test's one entry and make it degraded.
	d := newDNSBL(t, "1.2.3.4")
	serveTestEntries(d.Server, "bl.test")
	// A lab setup: sick.test lists the documentation ranges whole, and
	// the client.
	serveTestEntries(d.Server, "sick.test")
	d.Set("4.3.2.1.sick.test", rbltest.A("127.0.0.2"))
	d.SetTree("2.0.192.sick.test", rbltest.A("127.0.0.2"))
	d.SetTree("100.51.198.sick.test", rbltest.A("127.0.0.2"))
	d.SetTree("113.0.203.sick.test", rbltest.A("127.0.0.2"))
	cfg := healthConfig(t, d, "inet:127.0.0.1:8890", "")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	limited := strings.Replace(string(text), "zone = \"bl.test\"\n", "zone = \"bl.test\"\ndaily_queries = 1000\n", 1)
	if err := os.WriteFile(cfg, []byte(limited), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check", "-config", cfg, "1.2.3.4")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	block := out[strings.Index(out, "\nList health"):]
	for _, want := range [][]string{
		{`list "bl.test": healthy; probe rounds: 1, last: 127.0.0.2 listed, 127.0.0.1 not listed, ::ffff:127.0.0.2 listed, ::ffff:127.0.0.1 not listed; canaries: 0 of 15 listed;`, "of daily_queries 1000 in 24h"},
		{`list "sick.test": degraded (3 of 15 canaries listed: 192.0.2.`, "TEST-NET-1, RFC 5737", "normal for a bogon list or a lab list", "so still counted", "canaries: 3 of 15 listed (", "queries in 24h (no daily_queries limit)"},
		{`list "quiet.test": unmonitored; not probed (monitor = false); 1 query in 24h (no daily_queries limit)`},
	} {
		found := false
		for line := range strings.SplitSeq(block, "\n") {
			found = found || testutil.ContainsAll(line, want...)
		}
		if !found {
			t.Errorf("no line with %q:\n%s", want, block)
		}
	}
	// bl.test: one probe round, then the client's A and TXT queries.
	probes := d.TotalQueries()
	code, out, errOut = runCLI(t, "check", "-config", cfg, "-json", "1.2.3.4")
	var reports []checkReport
	if err := json.Unmarshal([]byte(out), &reports); code != 1 || err != nil || len(reports) != 1 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	bl := reports[0].Lists[0]
	if bl.Name != "bl.test" || bl.DailyQueries != 1000 || bl.Queries < 15 || bl.Queries > probes || !strings.Contains(bl.HealthEvidence, "canaries: 0 of 15 listed") {
		t.Errorf("bl.test in -json: %+v", bl)
	}
	if sick := reports[0].Lists[1]; sick.Health != "degraded" || !strings.Contains(sick.HealthReason, "still counted") || sick.Outcome != "listed" || sick.Weight != 1 {
		t.Errorf("sick.test in -json (degraded, so it counts): %+v", sick)
	}
}
