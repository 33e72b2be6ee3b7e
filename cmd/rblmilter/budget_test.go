package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// budgetConfig writes a config with one list, bl.test, limited to limit
// queries a day.
func budgetConfig(t *testing.T, path string, d *dnsbl, listen string, limit int) {
	t.Helper()
	text := fmt.Sprintf(`listen = %q
resolvers = [%q]
skip = []

[[list]]
zone = "bl.test"
daily_queries = %d

[metrics]
listen = "127.0.0.1:0"
`, listen, d.Addr(), limit)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scrapeSum adds up the values of the /metrics lines starting with prefix.
func scrapeSum(t *testing.T, metrics, prefix string) int {
	t.Helper()
	_, body := testutil.Get(t, nil, metrics+"/metrics")
	sum, found := 0, false
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			n, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			sum += int(n)
			found = true
		}
	}
	if !found {
		t.Fatalf("/metrics has no %s", prefix)
	}
	return sum
}

// TestDaemonDailyQueries: the daemon counts what bl.test really sends
// (probes and lookups), warns at 80%, keeps the count across SIGHUP, stops
// asking at the limit without refusing anyone, and shows all of it in
// /readyz, /metrics and the log.
func TestDaemonDailyQueries(t *testing.T) {
	d := newDNSBL(t, "192.0.2.1")
	serveTestEntries(d.Server, "bl.test")
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	cfg := filepath.Join(dir, "rblmilter.toml")
	const limit = 40
	budgetConfig(t, cfg, d, "unix:"+sock, limit)
	dm := startInProcess(t, cfg, sock)
	metrics := "http://" + dm.log.addr(t, "metrics listening")
	readyz := func(parts ...string) string {
		t.Helper()
		_, body := waitPage(t, metrics+"/readyz", dm.log, parts...)
		return body
	}
	readyz(`list "bl.test": healthy; probe rounds: 1, last: 127.0.0.2 listed, 127.0.0.1 not listed`)
	// The first round's probes count: every one of them was sent.
	probes := scrapeSum(t, metrics, `rblmilter_health_probes_total{list="bl.test",`)
	if sent := scrapeSum(t, metrics, `rblmilter_list_daily_queries{list="bl.test"} `); sent != probes || probes == 0 {
		t.Fatalf("after the first round %d queries counted, %d probes sent", sent, probes)
	}
	readyz(fmt.Sprintf("%d of daily_queries %d in 24h (%d%%)", probes, limit, probes*100/limit))

	client := 0
	connect := func(n int) {
		t.Helper()
		for range n {
			client++
			if act := connectAs(t, "unix", sock, fmt.Sprintf("198.51.100.%d", client)); act.Code != gomilter.ActAccept {
				t.Fatalf("clean client: %+v", act)
			}
		}
	}
	warnAt := limit * 80 / 100
	connect(warnAt - probes - 1)
	if n := dm.log.count("near its daily query budget"); n != 0 {
		t.Fatalf("warned below 80%%:\n%s", dm.log)
	}
	connect(1)
	dm.log.wait(t, "level=WARN", "list near its daily query budget (80%)", "list=bl.test", fmt.Sprintf("queries=%d", warnAt), fmt.Sprintf("daily_queries=%d", limit))

	// A reload keeps the count.
	dm.signals <- syscall.SIGHUP
	dm.log.wait(t, `msg="config reloaded"`)
	readyz(fmt.Sprintf("%d of daily_queries %d in 24h (80%%), near the limit", warnAt, limit))
	connect(limit - warnAt)
	if n := d.TotalQueries(); n != limit {
		t.Errorf("the DNS server got %d queries, want the limit %d", n, limit)
	}

	// At the limit the listed client is let in: bl.test is not asked.
	if act := connectAs(t, "unix", sock, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Errorf("listed client with the budget spent: %+v, want accept (fail open)", act)
	}
	dm.log.wait(t, "msg=decision", "ip=192.0.2.1", "decision=accept", "problems=bl.test:over_budget")
	if n := d.Queries(d.queryName("192.0.2.1")); n != 0 {
		t.Errorf("bl.test was asked about the client %d times over budget", n)
	}
	connect(2)
	if n := dm.log.count("level=ERROR", "at its daily query budget", "list=bl.test"); n != 1 {
		t.Errorf("%d lines for reaching the limit, want 1:\n%s", n, dm.log)
	}
	body := readyz(fmt.Sprintf("%d of daily_queries %d in 24h (100%%), at the limit: not asked", limit, limit))
	if !regexp.MustCompile(`(?m)^list "bl.test": healthy; probe rounds: 1, last: .*; 40 of daily_queries 40 in 24h`).MatchString(body) {
		t.Errorf("/readyz line:\n%s", body)
	}
	for series, want := range map[string]int{
		`rblmilter_list_daily_queries{list="bl.test"}`:                               limit,
		`rblmilter_list_daily_queries_limit{list="bl.test"}`:                         limit,
		`rblmilter_lookups_total{check="ip",list="bl.test",outcome="over_budget"}`:   3,
		`rblmilter_decisions_total{action="reject",result="accept",stage="connect"}`: client + 1,
	} {
		if got := scrapeSum(t, metrics, series+" "); got != want {
			t.Errorf("%s = %d, want %d", series, got, want)
		}
	}

	// A higher limit applies at reload, and the list is asked again.
	budgetConfig(t, cfg, d, "unix:"+sock, 1000)
	dm.signals <- syscall.SIGHUP
	dm.log.waitN(t, 2, `msg="config reloaded"`)
	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Errorf("listed client after raising the limit: %+v", act)
	}
	// Its A and TXT queries.
	readyz(fmt.Sprintf("%d of daily_queries 1000 in 24h (4%%)", limit+2))
}
