package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// dqsKey is mixed case: the engine asks in lower case, and DNS servers
// echo names in whatever case they like.
const dqsKey = "Dqs5ecretKey42"

// noKey fails the test when text contains the key in any case, or a
// recognisable part of it.
func noKey(t *testing.T, what, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, frag := range []string{strings.ToLower(dqsKey), "5ecretkey", "dqs5ec"} {
		if strings.Contains(lower, frag) {
			t.Errorf("%s shows the DQS key (%q):\n%s", what, frag, text)
			return
		}
	}
}

// Every way rblmilter talks — logs at debug level (decisions, DNS errors,
// health probes, reloads), SMTP replies, /metrics, /readyz, pprof, `check`
// in text and JSON, -check-config — with a keyed list whose DNS server
// lists, fails, times out, refuses, lies and echoes the query name (key
// included) in its TXT records.
func TestDQSKeyNeverAppears(t *testing.T) {
	d := newDNSBL(t)
	zone := strings.ToLower(dqsKey) + "." + testZone
	clients := map[string][]rbltest.Option{
		"192.0.2.1": {rbltest.A("127.0.0.2")},
		"192.0.2.2": {rbltest.Rcode(dns.RcodeServerFailure)},
		"192.0.2.3": {rbltest.Silent()},
		"192.0.2.4": {rbltest.A("127.255.255.254")},
		"192.0.2.5": {rbltest.A("10.0.0.1")},
		"192.0.2.6": {rbltest.Mismatch()},
	}
	for ip, opts := range clients {
		name := rbl.QueryName(mustAddr(ip), zone)
		echo := rbltest.TXT(fmt.Sprintf("listed: see https://bl.test/q?name=%s (asked %s, key %s)", name, strings.ToUpper(name), dqsKey))
		d.Set(name, append(opts, echo)...)
	}
	// A second keyed list only for the health probes (the first has
	// monitor = false: one bogus client answer would switch it off), its
	// RFC 5782 test entry echoing the key too.
	probeZone := strings.ToLower(dqsKey) + ".probe.test"
	d.Set(rbl.QueryName(mustAddr("127.0.0.2"), probeZone), rbltest.A("127.0.0.2"), rbltest.TXT("test entry for "+probeZone))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "rblmilter.toml")
	sock := filepath.Join(dir, "milter.sock")
	config := func(extra string) string {
		return fmt.Sprintf(`listen = "unix:%s"
resolvers = [%q]
timeout = "300ms"
skip = []
postscreen_log = true
reply = "554 5.7.1 [{ip}] blocked using {list} (code {code}, score {score}); {txt}"
%s

[[list]]
zone = %q
key = %q
monitor = false

[[list]]
zone = "probe.test"
key = %q
weight = 0

[log]
level = "debug"

[metrics]
listen = "127.0.0.1:0"
pprof = true
`, sock, d.Addr(), extra, testZone, dqsKey, dqsKey)
	}
	if err := os.WriteFile(cfg, []byte(config("")), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := startInProcess(t, cfg, sock)

	var replies strings.Builder
	for ip := range clients {
		act, err := tryConnect("unix", sock, ip)
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		fmt.Fprintf(&replies, "%s: %+v\n", ip, act)
	}
	if !strings.Contains(replies.String(), "[192.0.2.1] blocked using bl.test") || !strings.Contains(replies.String(), "q?name=") {
		t.Errorf("the listed client's reply lacks the list or its TXT: the test proves nothing\n%s", replies.String())
	}
	noKey(t, "an SMTP reply", replies.String())
	daemon.log.wait(t, "msg=decision", "ip=192.0.2.3")

	metrics := "http://" + daemon.log.addr(t, "metrics listening")
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2"} {
		_, body := testutil.Get(t, nil, metrics+path)
		noKey(t, path, body)
	}

	// Reloads that fail on the key itself.
	for _, bad := range []string{
		strings.Replace(config(""), `key = "`+dqsKey+`"`, `key = `+dqsKey, 1),
		strings.Replace(config(""), `key = "`+dqsKey+`"`, `key = ["`+dqsKey+`"]`, 1),
		strings.Replace(config(""), `key = "`+dqsKey+`"`, `key = "`+dqsKey+`.x"`, 1),
		strings.Replace(config(""), `key = "`+dqsKey+`"`, `key = "`+dqsKey+`"`+"\nname = \"ZEN "+dqsKey+`"`, 1),
	} {
		if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		n := daemon.log.count(`msg="keeping the previous config"`)
		daemon.signals <- syscall.SIGHUP
		daemon.log.waitN(t, n+1, `msg="keeping the previous config"`)
		code, out, errOut := runCLI(t, "-check-config", "-config", cfg)
		if code != 1 {
			t.Errorf("-check-config accepted %s", bad)
		}
		noKey(t, "-check-config", out+errOut)
	}
	if err := os.WriteFile(cfg, []byte(config("")), 0o644); err != nil {
		t.Fatal(err)
	}

	// check, text and JSON, on every client.
	var ips []string
	for ip := range clients {
		ips = append(ips, ip)
	}
	for _, args := range [][]string{{"check", "-config", cfg}, {"check", "-config", cfg, "-json"}} {
		code, out, errOut := runCLI(t, append(args, ips...)...)
		if code != 1 || !strings.Contains(out, "192.0.2.1") {
			t.Errorf("%q: exit %d:\n%s%s", args, code, out, errOut)
		}
		noKey(t, strings.Join(args, " "), out+errOut)
	}
	code, out, errOut := runCLI(t, "-check-config", "-config", cfg)
	if code != 0 {
		t.Errorf("-check-config: exit %d: %s", code, errOut)
	}
	noKey(t, "-check-config", out+errOut)

	daemon.stop(t, syscall.SIGTERM)
	if !strings.Contains(daemon.log.String(), "level=DEBUG") || !strings.Contains(daemon.log.String(), "SERVFAIL") {
		t.Errorf("no debug lines about DNS failures: the test proves nothing\n%s", daemon.log)
	}
	noKey(t, "the log", daemon.log.String())
	if d.Queries(rbl.QueryName(mustAddr("192.0.2.1"), zone)) == 0 || d.Queries(rbl.QueryName(mustAddr("127.0.0.2"), probeZone)) == 0 {
		t.Error("the keyed zones were never asked: the test proves nothing")
	}
}

// Config mistakes on the key line: the problem is named without the value.
func TestConfigErrorsNeverShowTheKey(t *testing.T) {
	base := "resolvers = [\"127.0.0.1\"]\n\n[[list]]\nzone = \"bl.test\"\n"
	for _, text := range []string{
		base + "key = " + dqsKey + "\n",
		base + "key = \"" + dqsKey + "\n",
		base + "key = '" + dqsKey + "\n",
		base + "key = \"" + dqsKey + "\" trailing\n",
		base + "key = [\"" + dqsKey + "\"]\n",
		base + "key = { value = \"" + dqsKey + "\" }\n",
		base + "key = \"" + dqsKey + ".x\"\n",
		base + "key = \"" + dqsKey + "\"\nkey = \"" + dqsKey + "\"\n",
		base + "key = \"" + dqsKey + "\"\nname = \"" + dqsKey + "\"\n",
		"resolvers = [\"127.0.0.1\"]\nlist = [{zone = \"bl.test\", key = " + dqsKey + "}]\n",
		"resolvers = [\"127.0.0.1\"]\nlist = [{zone = \"bl.test\", key = [\"" + dqsKey + "\"]}]\n",
	} {
		path := filepath.Join(t.TempDir(), "rblmilter.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, "-check-config", "-config", path)
		if code != 1 || errOut == "" {
			t.Errorf("accepted:\n%s", text)
		}
		noKey(t, "-check-config of\n"+text+"\n", out+errOut)
	}
}
