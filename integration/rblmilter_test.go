//go:build integration && linux

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// milterOptions are the settings that differ between the daemons a test
// runs; everything else is the common test config of milterConfig.
type milterOptions struct {
	// Listen is the socket spec, e.g. "inet:127.0.0.1:8890".
	Listen string
	// Stage and Action as in the config file.
	Stage, Action string
	// DNS is the rbldnsd address, "127.0.0.1:PORT".
	DNS string
	// Metrics is the [metrics] listen address, "127.0.0.1:PORT".
	Metrics string
	// Extra are more top-level TOML lines (socket_group, ...).
	Extra string
	// Lists are more [[list]] tables, after the common ones.
	Lists string
	// Threshold is the reject level; 0 means 1.
	Threshold int
}

// The lists every daemon of the suite uses (zones served by rbldnsd, see
// rbldnsd_test.go): testSites, a top-level line, and testListTables. All
// have the health monitor on and probing every second, so that every test
// runs through several probe rounds: agg.test's data sits in the
// documentation ranges (it must stay counted), wild.test lists the world
// and err.test answers an error code (both must be set aside).
const (
	// err.test answers 127.255.255.254 (an error code) for every address;
	// with weight 3 a miscounted error code would reject every client.
	testSites      = `sites = ["err.test*3"]`
	testListTables = `
[[list]]
zone = "bl.test"
name = "Test Blocklist"
filters = ["127.0.0.[2..11]"]

# agg.test answers several codes at once (like zen.spamhaus.org); only
# 127.0.0.4 counts here.
[[list]]
zone = "agg.test"
name = "Aggregate List"
filters = ["127.0.0.4"]

[[list]]
zone = "wl.test"
name = "Test Allowlist"
weight = -2
filters = ["127.0.[0..255].[1..3]"]

# wild.test lists everything, 127.0.0.1 included: the first probe round
# sets it aside. Counted, its weight 3 would reject every client.
[[list]]
zone = "wild.test"
name = "Wildcard List"
weight = 3
`
)

// milterConfig renders a daemon config in the contract's file format.
func milterConfig(o milterOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen = %q\n", o.Listen)
	fmt.Fprintf(&b, "resolvers = [%q]\n", o.DNS)
	fmt.Fprintf(&b, "stage = %q\n", o.Stage)
	fmt.Fprintf(&b, "action = %q\n", o.Action)
	fmt.Fprintf(&b, "threshold = %d\n", max(o.Threshold, 1))
	b.WriteString(`allowlist_threshold = -1
timeout = "3s"
drain_timeout = "5s"
# The test clients use documentation and loopback addresses, which are
# skipped by default.
skip = []
user = "nobody"
group = "nogroup"
health_interval = "1s"
`)
	b.WriteString(o.Extra)
	b.WriteString("\n" + testSites + "\n")
	b.WriteString(testListTables)
	b.WriteString(o.Lists)
	fmt.Fprintf(&b, `
[log]
format = "json"
level = "info"

[metrics]
listen = %q
`, o.Metrics)
	return b.String()
}

// rblmilterDaemon is one running rblmilter.
type rblmilterDaemon struct {
	*process
	configPath string
	metrics    string
	dial       dialer
}

// startRblmilter writes the config to dir/NAME.toml, starts the daemon
// (through wrap, e.g. `ip netns exec NS`, when given) and waits until its
// /readyz says it serves.
func startRblmilter(t testing.TB, dir, name string, o milterOptions, d dialer, wrap ...string) *rblmilterDaemon {
	t.Helper()
	bin := requireRblmilter(t)
	cfg := filepath.Join(dir, name+".toml")
	writeFile(t, cfg, milterConfig(o))
	if out, err := runErr(bin, "-check-config", "-config", cfg); err != nil {
		t.Fatalf("rblmilter -check-config %s: %v\n%s\nconfig:\n%s", cfg, err, out, milterConfig(o))
	}
	argv := append(append([]string{}, wrap...), bin, "-config", cfg)
	p := startProcess(t, name, filepath.Join(dir, name+".log"),
		[]string{"GORACE=halt_on_error=1 exitcode=66"}, argv...)
	r := &rblmilterDaemon{process: p, configPath: cfg, metrics: o.Metrics, dial: d}
	t.Cleanup(func() { r.checkRaces(t) })
	waitFor(t, startTimeout, name+" /readyz", func() error {
		if p.exited() {
			t.Fatalf("%v before it was ready", p.exitError())
		}
		return r.ready()
	})
	// Until the first probe round has judged them the lists count; no
	// mail before the wildcard list is set aside.
	r.waitHealth(t, "Wildcard List", 1, "unhealthy (lists the world: 127.0.0.1 is listed")
	return r
}

var probeRounds = regexp.MustCompile(`; probe rounds: (\d+),`)

// waitHealth waits until /readyz shows list after at least rounds probe
// rounds, with every one of parts in its line, and returns the line.
func (r *rblmilterDaemon) waitHealth(t testing.TB, list string, rounds int, parts ...string) string {
	t.Helper()
	var line string
	waitFor(t, startTimeout, fmt.Sprintf("%s: %q after %d probe rounds", r.name, list, rounds), func() error {
		if r.exited() {
			t.Fatalf("%v", r.exitError())
		}
		body, err := r.readyz()
		if err != nil {
			return err
		}
		prefix := fmt.Sprintf("list %q: ", list)
		for l := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(l, prefix) {
				line = l
			}
		}
		m := probeRounds.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("/readyz has no probe round for %s:\n%s", list, body)
		}
		if n, _ := strconv.Atoi(m[1]); n < rounds {
			return fmt.Errorf("%s probed %d times so far", list, n)
		}
		for _, p := range parts {
			if !strings.Contains(line, p) {
				return fmt.Errorf("/readyz line lacks %q:\n%s", p, line)
			}
		}
		return nil
	})
	return line
}

// ready asks the daemon's /readyz.
func (r *rblmilterDaemon) ready() error {
	_, err := r.readyz()
	return err
}

// readyz returns the body of a 200 /readyz.
func (r *rblmilterDaemon) readyz() (string, error) {
	resp, err := httpClient(r.dial).Get("http://" + r.metrics + "/readyz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("/readyz: %s: %s", resp.Status, body)
	}
	return string(body), nil
}

// checkRaces fails the test when the race-enabled daemon reported a race.
func (r *rblmilterDaemon) checkRaces(t testing.TB) {
	b, err := os.ReadFile(r.logPath)
	if err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		t.Errorf("%s reported a data race; see %s", r.name, r.logPath)
		dumpLog(t, r.name, r.logPath)
	}
}

// logEntries reads the daemon's JSON log lines (other lines, such as the
// race detector's, are left out).
func (r *rblmilterDaemon) logEntries() ([]map[string]any, error) {
	f, err := os.Open(r.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("%s: bad JSON log line %q: %v", r.logPath, line, err)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// decisions returns the decision log lines for ip, oldest first.
func (r *rblmilterDaemon) decisions(ip string) ([]map[string]any, error) {
	want := netip.MustParseAddr(ip)
	entries, err := r.logEntries()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, e := range entries {
		if e["msg"] != "decision" {
			continue
		}
		s, _ := e["ip"].(string)
		if got, err := netip.ParseAddr(s); err == nil && got.Unmap() == want {
			out = append(out, e)
		}
	}
	return out, nil
}

// waitDecision waits until the daemon has logged n decisions for ip and
// returns the newest.
func (r *rblmilterDaemon) waitDecision(t testing.TB, ip string, n int) map[string]any {
	t.Helper()
	var got []map[string]any
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to log decision #%d for %s", r.name, n, ip), func() error {
		var err error
		got, err = r.decisions(ip)
		if err != nil {
			return err
		}
		if len(got) < n {
			return fmt.Errorf("%d decision lines for %s so far", len(got), ip)
		}
		return nil
	})
	return got[len(got)-1]
}

// countDecisions is how many decisions the daemon logged for ip so far.
func (r *rblmilterDaemon) countDecisions(t testing.TB, ip string) int {
	t.Helper()
	got, err := r.decisions(ip)
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

// stopAndWait sends SIGTERM and expects a clean exit (status 0) after the
// drain.
func (r *rblmilterDaemon) stopAndWait(t testing.TB) {
	t.Helper()
	if err := r.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ended, err := r.wait(20 * time.Second)
	if !ended {
		t.Fatalf("%s did not exit within 20s of SIGTERM", r.name)
	}
	if err != nil {
		t.Fatalf("%s after SIGTERM: %v (want exit status 0)", r.name, err)
	}
}
