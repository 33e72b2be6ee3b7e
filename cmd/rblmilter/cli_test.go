package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// testEnv is the program's environment for in-process runs: no default
// config file, testdata/resolv.conf, fake accounts, and no signals unless
// the test sends them.
func testEnv(t *testing.T, stdout, stderr *bytes.Buffer) environment {
	pe := testParseEnv()
	return environment{
		stdout:        stdout,
		stderr:        stderr,
		defaultConfig: filepath.Join(t.TempDir(), "rblmilter.toml"),
		resolvConf:    pe.ResolvConf,
		signals:       func() (<-chan os.Signal, func()) { return make(chan os.Signal), func() {} },
		lookupUser:    pe.LookupUser,
		lookupGroup:   pe.LookupGroup,
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, testEnv(t, &out, &errOut))
	return code, out.String(), errOut.String()
}

func TestCheckConfigGood(t *testing.T) {
	code, out, errOut := runCLI(t, "-check-config", "-config", "testdata/full.toml")
	if code != 0 || out != "testdata/full.toml: OK (6 lists, listen unix:/run/rblmilter/rblmilter.sock)\n" || errOut != "" {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestCheckConfigPrintsEveryProblem(t *testing.T) {
	code, out, errOut := runCLI(t, "-check-config", "-config", "testdata/invalid-many.toml")
	want := ""
	for _, p := range strings.Split(invalidConfigs["invalid-many.toml"], "\n") {
		want += "testdata/invalid-many.toml: " + p + "\n"
	}
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d\nstdout: %s\nstderr:\n%s\nwant stderr:\n%s", code, out, errOut, want)
	}
}

func TestCheckConfigMissingFile(t *testing.T) {
	code, _, errOut := runCLI(t, "-check-config", "-config", "testdata/nonexistent.toml")
	if code != 1 || !strings.Contains(errOut, "testdata/nonexistent.toml") || !strings.Contains(errOut, "no such file") {
		t.Errorf("exit %d, stderr: %s", code, errOut)
	}
}

func TestCheckConfigEmbeddedDefault(t *testing.T) {
	code, out, errOut := runCLI(t, "-check-config")
	if code != 0 || out != "embedded default config: OK (1 lists, listen inet:127.0.0.1:8890)\n" {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestCheckConfigListenFlag(t *testing.T) {
	code, out, _ := runCLI(t, "-check-config", "-config", "testdata/minimal.toml", "-listen", "inet:8891@127.0.0.1")
	if code != 0 || !strings.Contains(out, "listen inet:8891@127.0.0.1") {
		t.Errorf("exit %d, stdout: %s", code, out)
	}
	code, _, errOut := runCLI(t, "-check-config", "-config", "testdata/minimal.toml", "-listen", "8891")
	if code != 1 || !strings.Contains(errOut, `testdata/minimal.toml: -listen: socket "8891": missing type prefix`) {
		t.Errorf("exit %d, stderr: %s", code, errOut)
	}
}

// The shipped example is valid as shipped.
func TestContribExamplePassesCheckConfig(t *testing.T) {
	code, out, errOut := runCLI(t, "-check-config", "-config", "../../contrib/rblmilter.toml")
	if code != 0 {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"serve"},
		{"check"},
		{"check", "-no-such-flag", "127.0.0.1"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, "-help")
	if code != 0 || !strings.Contains(errOut, "rblmilter check [-config FILE] [-json] [-client-name NAME] [-helo NAME] [-sender ADDRESS] IP...") {
		t.Errorf("-help: exit %d, stderr %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "-version")
	if code != 0 || !strings.HasPrefix(out, "rblmilter dev (") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

// checkConfig writes a config for `rblmilter check` against d.
func checkConfig(t *testing.T, d *dnsbl, extra string) string {
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	writeConfig(t, path, d, "inet:127.0.0.1:8890", extra)
	return path
}

func TestCheckSubcommand(t *testing.T) {
	d := newDNSBL(t, "192.0.2.1", "2001:db8::1")
	cfg := checkConfig(t, d, `allow = ["198.51.100.0/24"]
block = ["203.0.113.0/24"]
skip = ["10.0.0.0/8"]`)

	code, out, errOut := runCLI(t, "check", "-config", cfg, "192.0.2.2")
	if code != 0 || !strings.HasPrefix(out, "192.0.2.2: accept (score 0, threshold 1, ") || !strings.Contains(out, "bl.test") || !strings.Contains(out, "not_listed") {
		t.Errorf("clean: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, "check", "-config", cfg, "192.0.2.1")
	if code != 1 || !strings.HasPrefix(out, "192.0.2.1: reject (score 1, threshold 1, ") ||
		!testutil.ContainsAll(out, []string{"listed", "127.0.0.2", "listed for testing"}...) {
		t.Errorf("listed: exit %d\n%s%s", code, out, errOut)
	}

	// Flags after the addresses work too; IPv6, and the networks.
	code, out, errOut = runCLI(t, "-config", cfg, "check", "2001:db8::1", "10.1.2.3", "198.51.100.7", "203.0.113.9", "-json")
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var reports []checkReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []struct{ ip, decision, network string }{
		{"2001:db8::1", "reject", ""},
		{"10.1.2.3", "skipped", "10.0.0.0/8"},
		{"198.51.100.7", "allowed", "198.51.100.0/24"},
		{"203.0.113.9", "blocked", "203.0.113.0/24"},
	}
	if len(reports) != len(want) {
		t.Fatalf("%d reports, want %d:\n%s", len(reports), len(want), out)
	}
	for i, w := range want {
		r := reports[i]
		if r.IP != w.ip || r.Decision != w.decision || r.Network != w.network {
			t.Errorf("report %d = %+v, want %+v", i, r, w)
		}
	}
	if l := reports[0].Lists; len(l) != 1 || l[0].Name != testZone || l[0].Outcome != "listed" ||
		len(l[0].Codes) != 1 || l[0].Codes[0] != "127.0.0.2" || l[0].TXT != "listed for testing" || l[0].Weight != 1 {
		t.Errorf("lists = %+v", l)
	}
	if n := d.Queries(d.queryName("10.1.2.3")); n != 0 {
		t.Errorf("a skipped address was looked up %d times", n)
	}
}

func TestCheckBadInput(t *testing.T) {
	d := newDNSBL(t)
	cfg := checkConfig(t, d, "")
	code, out, errOut := runCLI(t, "check", "-config", cfg, "192.0.2.1", "192.0.2.300")
	if code != 2 || out != "" || errOut != "rblmilter check: \"192.0.2.300\" is not an IP address\n" {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if d.TotalQueries() != 0 {
		t.Errorf("%d DNS queries sent before the input was checked", d.TotalQueries())
	}
	code, _, errOut = runCLI(t, "check", "-config", "testdata/invalid-action.toml", "192.0.2.1")
	if code != 2 || !strings.Contains(errOut, `testdata/invalid-action.toml: action: "drop" is not one of`) {
		t.Errorf("bad config: exit %d, stderr %s", code, errOut)
	}
}

func TestCheckKeyNeverPrinted(t *testing.T) {
	d := newDNSBL(t)
	const key = "sekr1tkey"
	d.Set(rbl.QueryName(mustAddr("127.0.0.2"), key+"."+testZone), rbltest.A("127.0.0.2"))
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	text := "resolvers = [\"" + d.Addr() + "\"]\nskip = []\n\n[[list]]\nzone = \"" + testZone + "\"\nkey = \"" + key + "\"\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"", "-json"} {
		args := []string{"check", "-config", path, "127.0.0.2"}
		if format != "" {
			args = append(args, format)
		}
		code, out, errOut := runCLI(t, args...)
		if code != 1 || strings.Contains(out+errOut, key) {
			t.Errorf("%q: exit %d, output shows the key or misses the listing:\n%s%s", args, code, out, errOut)
		}
	}
}

// The built binary: exit codes as a shell script sees them.
func TestBinaryExitCodes(t *testing.T) {
	bin := rblmilterBinary(t)
	d := newDNSBL(t, "192.0.2.1")
	cfg := checkConfig(t, d, "")
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-version"}, 0, "rblmilter v0.0.0-test (0123456789ab-dirty, go1."},
		{[]string{"-check-config", "-config", "testdata/minimal.toml"}, 0, "testdata/minimal.toml: OK"},
		{[]string{"-check-config", "-config", "../../contrib/rblmilter.toml"}, 0, "../../contrib/rblmilter.toml: OK"},
		{[]string{"-check-config", "-config", "testdata/invalid-many.toml"}, 1, `testdata/invalid-many.toml: timeout: "soon" is not a duration`},
		{[]string{"check", "-config", cfg, "192.0.2.2"}, 0, "192.0.2.2: accept"},
		{[]string{"check", "-config", cfg, "192.0.2.2", "192.0.2.1"}, 1, "192.0.2.1: reject"},
		{[]string{"check", "-config", cfg, "not-an-ip"}, 2, `"not-an-ip" is not an IP address`},
		{[]string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		cmd := exec.Command(bin, c.args...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.out) {
			t.Errorf("rblmilter %q: exit %d, want %d with %q; output:\n%s", c.args, code, c.code, c.out, out)
		}
	}
}

// An early decision does not hide the lists that answer later: check
// waits for them and marks them.
func TestCheckShowsListsAnsweringAfterAnEarlyDecision(t *testing.T) {
	d := newDNSBL(t, "192.0.2.1")
	d.Set(rbl.QueryName(mustAddr("192.0.2.1"), "slow.test"), rbltest.A("127.0.0.3"), rbltest.Delay(200*time.Millisecond))
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	text := "resolvers = [\"" + d.Addr() + "\"]\nsites = [\"" + testZone + "\", \"slow.test\"]\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check", "-config", path, "-json", "192.0.2.1")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var reports []checkReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatal(err)
	}
	r := reports[0]
	if !r.Early || r.Score != 1 || len(r.Lists) != 2 {
		t.Fatalf("report = %+v; want an early decision with score 1 and both lists", r)
	}
	if l := r.Lists[1]; l.Name != "slow.test" || l.Outcome != "listed" || !l.Late || l.Codes[0] != "127.0.0.3" {
		t.Errorf("slow list = %+v; want its late listing", l)
	}
	code, out, _ = runCLI(t, "check", "-config", path, "192.0.2.1")
	if code != 1 || !strings.Contains(out, "listed (after decision)") {
		t.Errorf("text output lacks the late answer:\n%s", out)
	}
}

// check gives domain lists the names a session would show, and shows each
// lookup with the name asked, and why a name was not asked.
func TestCheckDomainLists(t *testing.T) {
	d := newDNSBL(t)
	d.Set("spammer.example.dbl.test", rbltest.A("127.0.1.2"), rbltest.TXT("spam domain"))
	d.Set("test.dbl.test", rbltest.A("127.0.1.2"))
	path := filepath.Join(t.TempDir(), "rblmilter.toml")
	text := `resolvers = ["` + d.Addr() + `"]
skip = []
threshold = 3
sites = ["` + testZone + `*3"]

[[list]]
zone = "dbl.test"
name = "Test DBL"
type = "domain"
weight = 3
filters = ["127.0.1.[2..99]"]
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check", "-config", path, "-json", "-client-name", "[192.0.2.1]", "-helo", "Mail.Spammer.Example", "-sender", "<>", "192.0.2.1")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the HELO name is listed)\n%s%s", code, out, errOut)
	}
	var reports []checkReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := reports[0]
	wantNames := []nameReport{
		{Check: "client", Given: "[192.0.2.1]", NotAsked: `"[192.0.2.1]": an address literal, not a name`},
		{Check: "helo", Given: "Mail.Spammer.Example"},
		{Check: "sender", Given: "<>", NotAsked: "the null sender <> has no domain"},
	}
	if r.Decision != "reject" || r.Score != 3 || !reflect.DeepEqual(r.Names, wantNames) {
		t.Errorf("report %+v\nnames %+v, want %+v", r, r.Names, wantNames)
	}
	dbl := r.Lists[1]
	got := []string{}
	for _, l := range dbl.Lookups {
		got = append(got, l.Check+" "+l.Name+" "+l.Outcome+" "+strings.Join(l.Codes, ",")+" "+l.TXT)
	}
	want := []string{"helo mail.spammer.example not_listed  ", "helo spammer.example listed 127.0.1.2 spam domain"}
	if dbl.Type != "domain" || dbl.Outcome != "listed" || dbl.Weight != 3 || !slices.Equal(got, want) {
		t.Errorf("DBL report %+v\nlookups %q, want %q", dbl, got, want)
	}
	// Probed at its RFC 5782 §5 names, not at IP test points or canaries.
	if dbl.Health != "healthy" || dbl.HealthEvidence != "test listed, invalid not listed" {
		t.Errorf("DBL health %q, evidence %q", dbl.Health, dbl.HealthEvidence)
	}
	if r.Lists[0].Type != "ip" || r.Lists[0].Lookups != nil {
		t.Errorf("IP list report %+v", r.Lists[0])
	}

	code, out, _ = runCLI(t, "check", "-config", path, "-helo", "mx.example.org", "-sender", "user@spammer.example", "192.0.2.1")
	if code != 1 || !testutil.ContainsAll(out, "192.0.2.1: reject (score 3", "helo=mx.example.org", "helo=example.org", "sender=spammer.example", "listed", "127.0.1.2", "spam domain",
		`list "Test DBL": healthy; probe rounds: 1, last: test listed, invalid not listed; `) {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "check", "-config", path, "-helo", "[192.0.2.1]", "192.0.2.1")
	if code != 0 || !testutil.ContainsAll(out, "helo not asked: \"[192.0.2.1]\": an address literal, not a name", "no_name") {
		t.Errorf("table with an address literal HELO: exit %d\n%s", code, out)
	}
}
