//go:build integration && linux

package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// defaultDrainTimeout is rblmilter's drain_timeout default: how long it may
// take to exit after SIGTERM. Process managers must wait longer.
const defaultDrainTimeout = 10 * time.Second

// TestContribSystemdUnit checks contrib/systemd/rblmilter.service with
// systemd's own tools (there is no systemd running here to start it): it
// parses cleanly, keeps the hardening issue #7 asks for, and
// `systemd-analyze security` rates it at most 2.0 ("OK").
func TestContribSystemdUnit(t *testing.T) {
	sa := requireCommands(t, "systemd-analyze")["systemd-analyze"]
	bin := requireRblmilter(t)
	unit := readContrib(t, "systemd/rblmilter.service")
	lines := map[string]bool{}
	for _, l := range strings.Split(unit, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"DynamicUser=yes",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"CapabilityBoundingSet=",
		"KillSignal=SIGTERM",
		"ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !lines[want] {
			t.Errorf("contrib/systemd/rblmilter.service lacks the line %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("contrib/systemd/rblmilter.service sets no TimeoutStopSec")
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d <= defaultDrainTimeout {
		t.Errorf("TimeoutStopSec=%s must be longer than the default drain_timeout %v (err %v)", m[1], defaultDrainTimeout, err)
	}

	dir := sharedDir(t)
	path := filepath.Join(dir, "rblmilter.service")
	writeFile(t, path, replaceOnce(t, "contrib systemd ExecStart", unit, "ExecStart=/usr/local/bin/rblmilter ", "ExecStart="+bin+" "))
	verifyUnit(t, sa, path)
}

// verifyUnit checks a unit file with systemd's own tools: `systemd-analyze
// verify` has nothing to say, and `systemd-analyze security` rates it at
// most 2.0 ("OK").
func verifyUnit(t *testing.T, sa, path string) {
	t.Helper()
	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=yes %s: %v\n%s", path, err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for rblmilter.service: ([0-9.]+) (\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(m[1], 64); level > 2.0 {
		t.Errorf("systemd-analyze security rates %s %s %s, want at most 2.0:\n%s", path, m[1], m[2], out)
	} else {
		t.Logf("systemd-analyze security %s: exposure %s %s", path, m[1], m[2])
	}
}

// TestContribSupervisordStopWait checks that supervisord waits longer than
// rblmilter's drain before it SIGKILLs it.
func TestContribSupervisordStopWait(t *testing.T) {
	m := regexp.MustCompile(`(?m)^stopwaitsecs=(\d+)$`).FindStringSubmatch(readContrib(t, "supervisord/rblmilter.conf"))
	if m == nil {
		t.Fatal("contrib/supervisord/rblmilter.conf sets no stopwaitsecs")
	}
	if n, _ := strconv.Atoi(m[1]); time.Duration(n)*time.Second <= defaultDrainTimeout {
		t.Errorf("stopwaitsecs=%s must be longer than the default drain_timeout %v", m[1], defaultDrainTimeout)
	}
}

// unboundMirrorExample returns the commented-out "own mirror" example of
// contrib/unbound/rblmilter.conf, uncommented.
func unboundMirrorExample(t testing.TB, conf string) string {
	t.Helper()
	_, after, ok := strings.Cut(conf, "# Optional: answer a list from your own mirror")
	if !ok {
		t.Fatal("contrib/unbound/rblmilter.conf has no \"Optional: answer a list from your own mirror\" example")
	}
	var b strings.Builder
	for _, l := range strings.Split(after, "\n")[1:] {
		s, ok := strings.CutPrefix(l, "#")
		if !ok {
			break
		}
		if s == "server:" || s == "stub-zone:" || strings.HasPrefix(s, "    ") {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// TestContribUnbound runs unbound with contrib/unbound/rblmilter.conf as
// shipped plus its "own mirror" example pointed at rbldnsd, and rblmilter's
// check command with resolvers = ["127.0.0.1"] (that unbound on port 53), as
// the recipe says. All of it runs in a network namespace of its own: a
// recursive resolver must not reach anything but the test's rbldnsd, and
// port 53 is free there.
func TestContribUnbound(t *testing.T) {
	requireRoot(t)
	cmds := requireCommands(t, "unbound", "unbound-checkconf", "rbldnsd", "ip")
	bin := requireRblmilter(t)
	ns := newNetns(t)
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, 5353, ns, ns.exec()...)

	contrib := readContrib(t, "unbound/rblmilter.conf")
	example := unboundMirrorExample(t, contrib)
	var conf strings.Builder
	fmt.Fprintf(&conf, `# unbound of rblmilter's integration tests: the harness settings, then
# contrib/unbound/rblmilter.conf verbatim, then its mirror example per test zone.
server:
    username: ""
    chroot: ""
    directory: "%[1]s"
    pidfile: "%[1]s/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    # No DNSSEC trust anchors here; and "test." is one of unbound's built-in
    # always-NXDOMAIN zones (RFC 6761), which the test zones live under.
    module-config: "iterator"
    local-zone: "test." nodefault

`, dir)
	conf.WriteString(contrib)
	conf.WriteString("\n")
	// The example's rbldnsd address is the test's, so only the zone changes.
	if !strings.Contains(example, "stub-addr: 127.0.0.1@5353") {
		t.Fatalf("the mirror example no longer points at 127.0.0.1@5353:\n%s", example)
	}
	if n := strings.Count(example, `"bl.example.net"`); n != 2 {
		t.Fatalf("the mirror example names \"bl.example.net\" %d times, want 2 (domain-insecure, stub-zone name):\n%s", n, example)
	}
	for _, zone := range []string{"bl.test", "wl.test", "agg.test", "err.test", "wild.test"} {
		conf.WriteString(strings.ReplaceAll(example, `"bl.example.net"`, `"`+zone+`"`))
	}
	confPath := filepath.Join(dir, "unbound.conf")
	writeFile(t, confPath, conf.String())
	run(t, cmds["unbound-checkconf"], confPath)
	ub := startProcess(t, "unbound", filepath.Join(dir, "unbound.log"), nil,
		append(ns.exec(), cmds["unbound"], "-d", "-c", confPath)...)
	resolver := dnsServer{addr: "127.0.0.1:53", dial: ns}
	waitFor(t, startTimeout, "unbound to answer from rbldnsd", func() error {
		if ub.exited() {
			t.Fatalf("%v", ub.exitError())
		}
		return resolver.expect("127.0.0.2", "bl.test", "127.0.0.2")
	})
	if err := resolver.expect(listedIPv4, "bl.test", "127.0.0.2"); err != nil {
		t.Errorf("through unbound: %v", err)
	}
	if err := dns.expect(listedIPv4, "bl.test", "127.0.0.2"); err != nil {
		t.Errorf("directly from rbldnsd: %v", err)
	}

	cfg := filepath.Join(dir, "rblmilter.toml")
	writeFile(t, cfg, milterConfig(milterOptions{
		Listen: "inet:127.0.0.1:8890", Stage: "connect", Action: "reject", DNS: "127.0.0.1",
		Metrics: "",
	}))
	check := func(ips ...string) (string, int) {
		out, err := runErr(append(append(ns.exec(), bin, "check", "-config", cfg), ips...)...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("rblmilter check: %v\n%s", err, out)
		}
		t.Logf("rblmilter check %s: exit %d\n%s", strings.Join(ips, " "), code, out)
		return out, code
	}
	if out, code := check(cleanIPv4, allowedIPv4); code != 0 {
		t.Errorf("rblmilter check of a clean and an allowlisted client: exit %d, want 0\n%s", code, out)
	}
	out, code := check(listedIPv4, cleanIPv4)
	if code != 1 {
		t.Errorf("rblmilter check with a listed client: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "Test Blocklist") {
		t.Errorf("rblmilter check output does not name the list that listed %s:\n%s", listedIPv4, out)
	}
}
