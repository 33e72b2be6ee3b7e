//go:build integration && linux

package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// healthConfig monitors err.test (rbldnsd answers an error code for every
// address) and agg.test (an aggregate list with RFC 5782 test entries and
// data in the documentation ranges, until the test makes it list the
// world), probing every second (the least allowed).
func healthConfig(listen, dns, metrics string) string {
	return fmt.Sprintf(`listen = %q
resolvers = [%q]
skip = []
timeout = "3s"
health_interval = "1s"
user = "nobody"
group = "nogroup"

[[list]]
zone = "err.test"
weight = 3

[[list]]
zone = "agg.test"
name = "Aggregate List"
# agg.test has no IPv6 data (so no IPv6 test entry).
ipv6 = false

[log]
format = "json"

[metrics]
listen = %q
`, listen, dns, metrics)
}

// get fetches path from the daemon's metrics listener.
func (r *rblmilterDaemon) get(t testing.TB, path string) string {
	t.Helper()
	_, body := testutil.Get(t, httpClient(r.dial), "http://"+r.metrics+path)
	return body
}

// milterConnect runs the connect stage for client as Postfix would and
// returns the milter's answer.
func milterConnect(t testing.TB, addr, client string) *gomilter.Action {
	t.Helper()
	cl := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	s, err := cl.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	act, err := s.Conn("client.example", gomilter.FamilyInet, 25000, client)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

// TestHealthWithRbldnsd: the daemon finds out by itself that a real
// rbldnsd zone answers an error code for everything, and that another
// starts listing the whole Internet; it stops counting them, says so in
// /readyz, /metrics and the log, and counts the second again once it is
// fixed.
func TestHealthWithRbldnsd(t *testing.T) {
	requireRoot(t)
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, freePort(t, "udp", "127.0.0.1"), hostDialer{})
	port := freePort(t, "tcp", "127.0.0.1")
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "tcp", "127.0.0.1")))

	bin := requireRblmilter(t)
	cfg := filepath.Join(dir, "health.toml")
	writeFile(t, cfg, healthConfig("inet:"+listen, dns.addr, metrics))
	p := startProcess(t, "rblmilter-health", filepath.Join(dir, "health.log"), []string{"GORACE=halt_on_error=1 exitcode=66"}, bin, "-config", cfg)
	d := &rblmilterDaemon{process: p, configPath: cfg, metrics: metrics, dial: hostDialer{}}
	t.Cleanup(func() { d.checkRaces(t) })

	readyz := func(what string, parts ...string) string {
		t.Helper()
		var body string
		waitFor(t, startTimeout, what, func() error {
			if p.exited() {
				t.Fatalf("%v", p.exitError())
			}
			if err := d.ready(); err != nil {
				return err
			}
			body = d.get(t, "/readyz")
			for _, part := range parts {
				if !strings.Contains(body, part) {
					return fmt.Errorf("/readyz lacks %q:\n%s", part, body)
				}
			}
			return nil
		})
		return body
	}

	// The error-code zone is caught by the first probe round. The
	// aggregate list, whose policy part lists TEST-NET-1 and TEST-NET-2
	// whole, answers two IPv4 canaries listed every round: degraded,
	// still counted.
	readyz("err.test unhealthy",
		`list "err.test": unhealthy (answers an operator error code`, "answer: 127.0.0.2 → A 127.255.255.254", "not counted",
		`list "Aggregate List": degraded (2 of 9 canaries listed: 192.0.2.`, "so still counted", "canaries: 2 of 9 listed (")
	const client = "203.0.113.77"
	if act := milterConnect(t, listen, client); act.Code != gomilter.ActAccept {
		t.Fatalf("clean client with err.test unhealthy: %+v", act)
	}

	// agg.test starts listing everything.
	aggFile := filepath.Join(dns.dir, "agg-a")
	original := readText(t, aggFile)
	rewriteZone(t, aggFile, original+"0.0.0.0/1\n128.0.0.0/1\n")
	waitFor(t, 15*time.Second, "rbldnsd to list everything on agg.test", func() error {
		return dns.expect(client, "agg.test", "127.0.0.2")
	})
	readyz("agg.test unhealthy", `list "Aggregate List": unhealthy (lists the world: 127.0.0.1 is listed`, "; answer: 127.0.0.1 → A 127.0.0.2), not counted")
	if act := milterConnect(t, listen, client); act.Code != gomilter.ActAccept {
		t.Errorf("client listed only by a list that lists the world: %+v", act)
	}
	body := d.get(t, "/metrics")
	for _, want := range []string{
		`rblmilter_list_health_state{list="err.test",state="unhealthy"} 1`,
		`rblmilter_list_health_state{list="Aggregate List",state="unhealthy"} 1`,
		`rblmilter_lookups_total{check="ip",list="Aggregate List",outcome="disabled"} 1`,
		`rblmilter_decisions_total{action="reject",result="accept",stage="connect"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Fixed: counted again.
	rewriteZone(t, aggFile, original)
	waitFor(t, 15*time.Second, "rbldnsd to stop listing everything", func() error {
		return dns.expect(client, "agg.test")
	})
	readyz("agg.test counted again", `list "Aggregate List": degraded (2 of 9 canaries listed`)
	if act := milterConnect(t, listen, client); act.Code != gomilter.ActAccept {
		t.Errorf("clean client after recovery: %+v", act)
	}

	entries, err := d.logEntries()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		list, _ := e["list"].(string)
		to, _ := e["to"].(string)
		if e["msg"] != nil && to != "" {
			count[list+" "+to+" "+e["level"].(string)]++
		}
	}
	for key, want := range map[string]int{
		"err.test unhealthy ERROR":       1,
		"Aggregate List unhealthy ERROR": 1,
		// At start, and when it is fixed.
		"Aggregate List degraded WARN": 2,
		"Aggregate List healthy WARN":  0,
	} {
		if count[key] != want {
			t.Errorf("%d log lines %q, want %d (all: %v)", count[key], key, want, count)
		}
	}
	d.stopAndWait(t)
}

// rewriteZone replaces a zone file and makes sure rbldnsd, which compares
// modification times in whole seconds, sees the change.
func rewriteZone(t testing.TB, path, content string) {
	t.Helper()
	writeFile(t, path, content)
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
}
