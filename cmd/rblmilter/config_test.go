package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/rblmilter/rblmilter/milter"
	"github.com/rblmilter/rblmilter/rbl"
)

// testParseEnv knows a few accounts and reads testdata/resolv.conf, so
// results do not depend on the machine.
func testParseEnv() parseEnv {
	known := func(names ...string) func(string) error {
		return func(n string) error {
			for _, k := range names {
				if n == k {
					return nil
				}
			}
			return errors.New("unknown")
		}
	}
	return parseEnv{
		ResolvConf:  "testdata/resolv.conf",
		LookupUser:  known("postfix", "nobody"),
		LookupGroup: known("postfix", "nogroup"),
	}
}

func parseFile(t *testing.T, path string, env parseEnv) (*daemonConfig, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseConfig(data, env)
}

func mustParse(t *testing.T, text string) *daemonConfig {
	t.Helper()
	cfg, err := parseConfig([]byte(text), testParseEnv())
	if err != nil {
		t.Fatalf("parseConfig:\n%s\nerror:\n%v", text, err)
	}
	return cfg
}

// Each invalid fixture holds one mistake (invalid-many.toml several) and
// must be reported with exactly this message.
var invalidConfigs = map[string]string{
	"invalid-unknown-key.toml":               `thresold: unknown key (did you mean "threshold"?)`,
	"invalid-list-unknown-key.toml":          `list[1].wieght: unknown key (did you mean "weight"?)`,
	"invalid-list-weight.toml":               `list[2].weight: "x" is not a number`,
	"invalid-list-weight-float.toml":         `list[0].weight: 1.5 is not a whole number`,
	"invalid-list-filter.toml":               `list[0].filters[1]: bad filter "127.0.0.[300]": octet 4 "[300]": "300" is not a number from 0 to 255`,
	"invalid-list-zone-missing.toml":         `list[0].zone: missing (every [[list]] needs the DNS zone to query)`,
	"invalid-list-zone.toml":                 `list[0].zone: "bl example.org" is not a DNS zone: label "bl example" has the character ' '`,
	"invalid-list-key.toml":                  `list[0].key: not a valid DNS label (letters, digits, '-' and '_', at most 63 characters; the key itself is not shown)`,
	"invalid-list-timeout.toml":              `list[0].timeout: "3s" is longer than the whole-connection timeout "2s"`,
	"invalid-list-on-error.toml":             `list[0].on_error: "reject" is not one of ignore, tempfail`,
	"invalid-list-daily-queries.toml":        `list[0].daily_queries: -300000 is negative (0 means no limit)`,
	"invalid-list-daily-queries-float.toml":  `list[0].daily_queries: 300000 must be written as a whole number, without a decimal point or exponent`,
	"invalid-list-daily-queries-string.toml": `list[0].daily_queries: "300k" is not a number`,
	"invalid-list-no-family.toml":            `list[0]: ipv4 and ipv6 are both false, so the list would never be asked`,
	"invalid-list-not-table.toml":            `list[0]: "zen.spamhaus.org" is not a table (like [[list]])`,
	"invalid-list-type.toml":                 `list[0].type: "rhsbl" is not one of ip, domain`,
	"invalid-list-checks.toml":               `list[0].checks[1]: "mail_from" is not one of client, reverse_client, helo, sender`,
	"invalid-list-checks-ip.toml":            `list[0].checks: applies only to type = "domain" lists (an IP list is asked about the client's address)`,
	"invalid-list-checks-empty.toml":         `list[0].checks: empty, so the list would never be asked (leave it out for client, helo, sender)`,
	"invalid-list-domain-ipv6.toml":          `list[0].ipv6: applies only to type = "ip" lists (a domain list is asked about names, whatever the client's address family)`,
	"invalid-list-forgeable.toml":            `list[1]: negative weight -2 on checks helo: a client can claim any HELO name, sender domain or PTR name, so it could allowlist itself; a domain allowlist may only check "client" (the verified client name)`,
	"invalid-site.toml":                      `sites[1]: bad DNSBL site "bl.example.org=127.0.0.[2..300]": filter "127.0.0.[2..300]": octet 4 "[2..300]": "300" is not a number from 0 to 255`,
	"invalid-no-lists.toml":                  `no DNS lists configured: set sites or add a [[list]] table`,
	"invalid-resolver-port.toml":             `resolvers[0]: "192.0.2.53:x": bad port`,
	"invalid-resolver-host.toml":             `resolvers[0]: "dns.example.org" is not an IP address, IP:PORT or [IPv6]:PORT`,
	"invalid-resolvers-type.toml":            `resolvers: "127.0.0.1" is not a list (like ["127.0.0.1"])`,
	"invalid-listen.toml":                    `listen: socket "inet:foo": want HOST:PORT or PORT@HOST (use inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@[::1], inet6:[::1]:PORT, unix:/path or local:/path)`,
	"invalid-socket-mode.toml":               `socket_mode: "0999" is not a file mode (like "0660")`,
	"invalid-socket-owner.toml":              `socket_owner: "no-such-user": no such user`,
	"invalid-user.toml":                      `user: "no-such-user": no such user`,
	"invalid-group.toml":                     `group: "no-such-group": no such group`,
	"invalid-timeout.toml":                   `timeout: "5" is not a duration (like "5s")`,
	"invalid-timeout-number.toml":            `timeout: 5 is not a duration (like "5s")`,
	"invalid-drain-timeout.toml":             `drain_timeout: "-1s" is negative`,
	"invalid-health-interval.toml":           `health_interval: "0s" must be at least 1s`,
	"invalid-threshold.toml":                 `threshold: 0 must be at least 1 (a client is rejected when its score reaches it)`,
	"invalid-allowlist-threshold.toml":       `allowlist_threshold: 2 must be negative, or 0 to switch it off`,
	"invalid-action.toml":                    `action: "drop" is not one of reject, tempfail, tag, log`,
	"invalid-stage.toml":                     `stage: "helo" is not one of connect, rcpt`,
	"invalid-reply.toml":                     `reply: "554 4.7.1 Client host [{ip}] blocked using {list}": enhanced status code 4.7.1 must start with 5 to match reply code 554`,
	"invalid-reply-code.toml":                `reply: "450 4.7.1 Client host [{ip}] blocked using {list}" must start with a 5xx reply code (like "554 5.7.1 ...")`,
	"invalid-reply-placeholder.toml":         `reply: "554 5.7.1 Client host {host} blocked using {list}": unknown placeholder {host} (use {ip}, {name}, {list}, {code}, {txt}, {score})`,
	"invalid-tempfail-reply.toml":            `tempfail_reply: "554 5.7.1 try later" must start with a 4xx reply code (like "454 4.7.1 ...")`,
	"invalid-header.toml":                    `header: "X RBL" is not a valid header field name`,
	"invalid-header-standard.toml":           `header: "Subject" is a header field the message itself uses; rblmilter deletes incoming copies of its header, so it needs a name of its own (like "X-RBL")`,
	"invalid-tag-threshold.toml":             `tag_threshold: 3 must be below threshold 3 (clients from tag_threshold up to threshold are accepted and tagged, from threshold on the action applies)`,
	"invalid-tag-threshold-negative.toml":    `tag_threshold: -1 is negative (0 switches the tag level off)`,
	"invalid-results-header.toml":            `results_header: "yes" is not true or false`,
	"invalid-results-header-no-name.toml":    `header: "" is not a valid header field name, and results_header = true adds that header to every message`,
	"invalid-authserv-id-empty.toml":         `authserv_id: "" is empty (leave the key out to use the MTA's host name, its {j} macro)`,
	"invalid-authserv-id.toml":               `authserv_id: "mx.example.org; dnswl=pass" has the character ';' (an authserv-id is a host name like "mx.example.org")`,
	"invalid-list-reply.toml":                `list[1].reply: "451 4.7.1 Client host [{ip}] listed by Barracuda" must start with a 5xx reply code (like "554 5.7.1 ...")`,
	"invalid-list-tempfail-reply.toml":       `list[0].tempfail_reply: "554 5.7.1 {list} did not answer" must start with a 4xx reply code (like "454 4.7.1 ...")`,
	"invalid-list-reply-placeholder.toml":    `list[0].reply: "554 5.7.1 {client} is listed": unknown placeholder {client} (use {ip}, {name}, {list}, {code}, {txt}, {score})`,
	"invalid-list-reply-empty.toml":          `list[0].reply: "" is empty (leave the key out to use the global reply)`,
	"invalid-list-sessions.toml":             `list[0].sessions: "auth" is not one of unauthenticated, authenticated, all`,
	"invalid-list-sessions-connect.toml":     `list[1].sessions: "authenticated" needs stage = "rcpt": with stage = "connect" the decision is taken when the client connects, before it can authenticate (SMTP AUTH comes after EHLO), so the list would never count`,
	"invalid-exempt-recipients.toml":         `exempt_recipients[1]: "" is not a local part or address (like "postmaster" or "abuse@example.com")`,
	"invalid-skip-authenticated.toml":        `skip_authenticated: "yes" is not true or false`,
	"invalid-skip.toml":                      `skip[0]: "10.0.0.1/8" has host bits set (did you mean "10.0.0.0/8"?)`,
	"invalid-allow.toml":                     `allow[1]: "not-a-network" is not a network (like "192.0.2.0/24" or "2001:db8::/32")`,
	"invalid-block.toml":                     `block[0]: "2001:db8::/129" is not a network (like "192.0.2.0/24" or "2001:db8::/32")`,
	"invalid-cache-table.toml":               `cache: 5 is not a table (like [cache])`,
	"invalid-cache-size.toml":                `cache.size: -1 is negative (0 switches the cache off)`,
	"invalid-cache-ttl.toml":                 `cache.min_ttl: "2h" is longer than cache.max_ttl "1h"`,
	"invalid-cache-unknown.toml":             `cache.max_tll: unknown key (did you mean "max_ttl"?)`,
	"invalid-log-level.toml":                 `log.level: "verbose" is not one of debug, info, warn, error`,
	"invalid-log-format.toml":                `log.format: "syslog" is not one of text, json`,
	"invalid-metrics-listen.toml":            `metrics.listen: "9890" is not HOST:PORT (like "127.0.0.1:9890"; "" switches metrics off)`,
	"invalid-syntax.toml":                    `line 3: expected a comma (',') or array terminator (']'), but got 't'`,
	"invalid-many.toml": strings.Join([]string{
		`resolvers[1]: "127.0.0.1:99999": bad port`,
		`timeout: "soon" is not a duration (like "5s")`,
		`action: "drop" is not one of reject, tempfail, tag, log`,
		`list[0].weight: "x" is not a number`,
		`list[0].filters[0]: bad filter "127.0.0.[300]": octet 4 "[300]": "300" is not a number from 0 to 255`,
		`colour: unknown key`,
		`log.level: "loud" is not one of debug, info, warn, error`,
	}, "\n"),
	// The milter judges the policy's fields, and names every bad one.
	"invalid-policy-many.toml": strings.Join([]string{
		`reply: "450 4.7.1 Client host [{ip}] blocked using {list}" must start with a 5xx reply code (like "554 5.7.1 ...")`,
		`tempfail_reply: "554 5.7.1 try later" must start with a 4xx reply code (like "454 4.7.1 ...")`,
		`header: "X RBL" is not a valid header field name`,
	}, "\n"),
}

func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := invalidConfigs[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected message in invalidConfigs", f)
		}
	}
	for name, want := range invalidConfigs {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseFile(t, filepath.Join("testdata", name), testParseEnv())
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *configError: %v", err, err)
			}
			if got := err.Error(); got != want {
				t.Errorf("wrong message\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	cfg, err := parseFile(t, "testdata/minimal.toml", testParseEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != (milter.SocketSpec{Network: "tcp", Address: "127.0.0.1:8890"}) || cfg.ListenText != "inet:127.0.0.1:8890" {
		t.Errorf("listen = %+v %q", cfg.Listen, cfg.ListenText)
	}
	if cfg.Socket != (milter.SocketOptions{Mode: milter.DefaultSocketMode}) {
		t.Errorf("socket options = %+v", cfg.Socket)
	}
	if want := []string{"127.0.0.1:5353"}; !reflect.DeepEqual(cfg.Resolvers, want) {
		t.Errorf("resolvers = %q, want %q", cfg.Resolvers, want)
	}
	e := cfg.Engine
	if e.Threshold != rbl.DefaultThreshold || e.AllowlistThreshold != 0 || e.Timeout != milter.DefaultTimeout || e.FetchTXT {
		t.Errorf("engine = %+v", e)
	}
	if len(e.Lists) != 1 || e.Lists[0].Zone != "zen.spamhaus.org" || len(e.Lists[0].Filters) != 1 {
		t.Errorf("lists = %#v", e.Lists)
	}
	p := cfg.Policy
	if p.Action != milter.ActionReject || p.Stage != milter.StageConnect ||
		p.Reply != milter.DefaultReply || p.TempfailReply != milter.DefaultTempfailReply ||
		p.Header != milter.DefaultHeader || !p.SkipAuthenticated || p.PostscreenLog ||
		p.Timeout != milter.DefaultTimeout ||
		!reflect.DeepEqual(p.ExemptRecipients, []string{"postmaster", "abuse"}) ||
		!reflect.DeepEqual(p.Skip, milter.DefaultSkip()) || p.Allow != nil || p.Block != nil {
		t.Errorf("policy = %+v", p)
	}
	if cfg.DrainTimeout != defaultDrainTimeout || cfg.HealthInterval != rbl.DefaultHealthInterval || cfg.User != "" || cfg.Group != "" {
		t.Errorf("drain %v health %v user %q group %q", cfg.DrainTimeout, cfg.HealthInterval, cfg.User, cfg.Group)
	}
	if want := (rbl.CacheConfig{Size: rbl.DefaultCacheSize, MinTTL: rbl.DefaultMinTTL, MaxTTL: rbl.DefaultMaxTTL}); cfg.Cache == nil || *cfg.Cache != want {
		t.Errorf("cache = %+v, want %+v", cfg.Cache, want)
	}
	if cfg.Log != (logConfig{JSON: false, Level: slog.LevelInfo}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.Metrics != (metricsConfig{Listen: "127.0.0.1:9890"}) {
		t.Errorf("metrics = %+v", cfg.Metrics)
	}
}

func TestFullConfig(t *testing.T) {
	cfg, err := parseFile(t, "testdata/full.toml", testParseEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != (milter.SocketSpec{Network: "unix", Address: "/run/rblmilter/rblmilter.sock"}) {
		t.Errorf("listen = %+v", cfg.Listen)
	}
	if cfg.Socket != (milter.SocketOptions{Mode: 0o600, Owner: "postfix", Group: "postfix"}) {
		t.Errorf("socket options = %+v", cfg.Socket)
	}
	if want := []string{"127.0.0.1:53", "127.0.0.1:5353", "[::1]:53", "[::1]:53"}; !reflect.DeepEqual(cfg.Resolvers, want) {
		t.Errorf("resolvers = %q, want %q", cfg.Resolvers, want)
	}
	e := cfg.Engine
	if e.Threshold != 3 || e.AllowlistThreshold != -2 || e.TagThreshold != 1 || e.Timeout != 3*time.Second || e.FetchTXT || !e.FetchAllowlistTXT {
		t.Errorf("engine = %+v", e)
	}
	if len(e.Lists) != 6 {
		t.Fatalf("got %d lists, want 6 (2 sites + 4 tables)", len(e.Lists))
	}
	if l := e.Lists[1]; l.Zone != "list.dnswl.org" || l.Weight != -2 {
		t.Errorf("site 2 = %#v", l)
	}
	l := e.Lists[2]
	if l.Zone != "zen.dq.spamhaus.net" || l.Name != "Spamhaus ZEN (DQS)" || l.Key != "abcdefghijklmnopqrstuvwxyz" ||
		l.Weight != 2 || len(l.Filters) != 4 || l.Timeout != 2*time.Second || l.OnError != rbl.FailTempfail ||
		!l.IPv4 || l.IPv6 || !l.Shadow || l.Monitor || l.DailyQueries != 250000 || l.Sessions != rbl.SessionsAll {
		t.Errorf("list[0] = %+v", l)
	}
	if f := l.Filters[3]; !f.HasWeight || f.Weight != 5 {
		t.Errorf("filter 127.0.0.4*5 = %+v", f)
	}
	if l := e.Lists[3]; l.Zone != "bl.example.net" || l.Name != "bl.example.net" || l.Weight != 1 ||
		l.Filters != nil || l.Timeout != 0 || l.OnError != rbl.FailIgnore || !l.IPv4 || !l.IPv6 || l.Shadow || !l.Monitor ||
		l.Type != rbl.IPList || l.Checks != 0 || l.DailyQueries != 0 ||
		l.Sessions != rbl.SessionsAll {
		// skip_authenticated = false: the default sessions count for
		// authenticated clients too.
		t.Errorf("list[1] defaults = %+v", l)
	}
	if l := e.Lists[4]; l.Type != rbl.DomainList || l.Checks != rbl.Checks(rbl.CheckClient, rbl.CheckReverseClient, rbl.CheckHelo) ||
		l.IPv4 || l.IPv6 || l.Weight != 2 || len(l.Filters) != 1 {
		t.Errorf("list[2] (domain) = %#v", l)
	}
	if l := e.Lists[5]; l.Zone != "authbl.example.net" || l.Sessions != rbl.SessionsAuthenticated {
		t.Errorf("list[3] = %+v", l)
	}
	p := cfg.Policy
	if p.Action != milter.ActionTag || p.Stage != milter.StageRcpt ||
		p.Reply != "550 5.7.1 [{ip}] listed on {list} ({code}, score {score}): {txt}" ||
		p.TempfailReply != "450 4.7.1 try again later" || p.Header != "X-Spam-RBL" ||
		p.SkipAuthenticated || !p.PostscreenLog || p.Timeout != 3*time.Second ||
		!reflect.DeepEqual(p.ExemptRecipients, []string{"postmaster@example.com"}) ||
		!p.ResultsHeader || p.AuthservID != "mx.example.org" {
		t.Errorf("policy = %+v", p)
	}
	// The list replies line up with the engine's entries: two sites first.
	if want := []milter.ListReply{{}, {}, {
		Reply:         "554 5.7.1 [{ip}] is listed by Spamhaus: {txt}",
		TempfailReply: "451 4.7.1 Spamhaus did not answer for [{ip}]",
	}, {}, {}, {}}; !reflect.DeepEqual(p.ListReplies, want) {
		t.Errorf("list replies = %q, want %q", p.ListReplies, want)
	}
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	if !reflect.DeepEqual(p.Skip, prefixes("127.0.0.0/8", "::1/128")) ||
		!reflect.DeepEqual(p.Allow, prefixes("192.0.2.0/28")) ||
		!reflect.DeepEqual(p.Block, prefixes("198.51.100.0/24", "2001:db8:bad::/48")) {
		t.Errorf("networks: skip %v allow %v block %v", p.Skip, p.Allow, p.Block)
	}
	if cfg.DrainTimeout != 20*time.Second || cfg.HealthInterval != time.Minute || cfg.User != "nobody" || cfg.Group != "nogroup" {
		t.Errorf("drain %v health %v user %q group %q", cfg.DrainTimeout, cfg.HealthInterval, cfg.User, cfg.Group)
	}
	if want := (rbl.CacheConfig{Size: 5000, MinTTL: 30 * time.Second, MaxTTL: 30 * time.Minute, ErrorTTL: 10 * time.Second}); cfg.Cache == nil || *cfg.Cache != want {
		t.Errorf("cache = %+v, want %+v", cfg.Cache, want)
	}
	if cfg.Log != (logConfig{JSON: true, Level: slog.LevelDebug}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.Metrics != (metricsConfig{Listen: "", Pprof: true}) {
		t.Errorf("metrics = %+v", cfg.Metrics)
	}
}

// Lists count for unauthenticated sessions by default; skip_authenticated =
// false makes those count for authenticated ones too, and leaves the
// authenticated-only lists as they are.
func TestSessionsAndSkipAuthenticated(t *testing.T) {
	const lists = `stage = "rcpt"
[[list]]
zone = "zen.example"
[[list]]
zone = "authbl.example"
sessions = "authenticated"
`
	for skip, want := range map[string][]rbl.Sessions{
		"":                             {rbl.SessionsUnauthenticated, rbl.SessionsAuthenticated},
		"skip_authenticated = false\n": {rbl.SessionsAll, rbl.SessionsAuthenticated},
	} {
		cfg := mustParse(t, skip+lists)
		if got := []rbl.Sessions{cfg.Engine.Lists[0].Sessions, cfg.Engine.Lists[1].Sessions}; !reflect.DeepEqual(got, want) {
			t.Errorf("%q: sessions %v, want %v", skip, got, want)
		}
	}
}

func TestEmptySkipSkipsNothing(t *testing.T) {
	cfg := mustParse(t, `sites = ["bl.example"]
skip = []`)
	if len(cfg.Policy.Skip) != 0 {
		t.Errorf("skip = %v, want none", cfg.Policy.Skip)
	}
}

func TestCacheSizeZeroSwitchesCacheOff(t *testing.T) {
	cfg := mustParse(t, "sites = [\"bl.example\"]\n[cache]\nsize = 0\n")
	if cfg.Cache != nil {
		t.Errorf("cache = %+v, want nil", cfg.Cache)
	}
}

// The daemon's engine never fetches TXT records with the A answers: the
// milter fetches the one a reply shows when it writes the reply.
func TestDaemonFetchesNoTXTWithTheAnswers(t *testing.T) {
	cfg := mustParse(t, `sites = ["bl.example"]
reply = "554 5.7.1 listed on {list}: {txt}"
tempfail_reply = "451 4.7.1 {txt}"`)
	if cfg.Engine.FetchTXT {
		t.Error("FetchTXT on: every listing list's TXT record is fetched, though a reply shows one")
	}
}

func TestSocketModeForms(t *testing.T) {
	for text, want := range map[string]os.FileMode{
		`socket_mode = "0660"`: 0o660,
		`socket_mode = "660"`:  0o660,
		`socket_mode = "0600"`: 0o600,
		`socket_mode = 0o666`:  0o666,
	} {
		cfg := mustParse(t, "sites = [\"bl.example\"]\n"+text)
		if cfg.Socket.Mode != want {
			t.Errorf("%s: mode %o, want %o", text, cfg.Socket.Mode, want)
		}
	}
}

// Every socket form an admin may paste reaches the milter package parsed,
// from the listen key and from -listen.
func TestListenForms(t *testing.T) {
	for spec, want := range map[string]milter.SocketSpec{
		"inet:127.0.0.1:8890":       {Network: "tcp", Address: "127.0.0.1:8890"},
		"inet:8890@127.0.0.1":       {Network: "tcp", Address: "127.0.0.1:8890"},
		"inet:localhost:8890":       {Network: "tcp", Address: "localhost:8890"},
		"inet6:8890@[::1]":          {Network: "tcp6", Address: "[::1]:8890"},
		"inet6:[::1]:8890":          {Network: "tcp6", Address: "[::1]:8890"},
		"unix:/run/rblmilter.sock":  {Network: "unix", Address: "/run/rblmilter.sock"},
		"local:/run/rblmilter.sock": {Network: "unix", Address: "/run/rblmilter.sock"},
	} {
		cfg := mustParse(t, "sites = [\"bl.example\"]\nlisten = \""+spec+"\"")
		if cfg.Listen != want || cfg.ListenText != spec {
			t.Errorf("listen = %q: got %+v (%q), want %+v", spec, cfg.Listen, cfg.ListenText, want)
		}
		env := testParseEnv()
		env.ListenOverride = spec
		cfg, err := parseConfig([]byte("sites = [\"bl.example\"]\nlisten = \"inet:127.0.0.1:1\""), env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Listen != want {
			t.Errorf("-listen %q: got %+v, want %+v", spec, cfg.Listen, want)
		}
	}
}

func TestListenOverrideErrorNamesTheFlag(t *testing.T) {
	env := testParseEnv()
	env.ListenOverride = "8890"
	_, err := parseConfig([]byte(`sites = ["bl.example"]`), env)
	if err == nil || !strings.HasPrefix(err.Error(), `-listen: socket "8890": missing type prefix`) {
		t.Errorf("error = %v", err)
	}
}

func TestResolverForms(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":        "127.0.0.1:53",
		"127.0.0.1:5353":   "127.0.0.1:5353",
		"::1":              "[::1]:53",
		"[::1]:5353":       "[::1]:5353",
		"[2001:db8::1]:53": "[2001:db8::1]:53",
	} {
		got, err := resolverAddress(in)
		if err != nil || got != want {
			t.Errorf("resolverAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                `"" is not an IP address, IP:PORT or [IPv6]:PORT`,
		"127.0.0.1:0":     `"127.0.0.1:0": bad port`,
		"127.0.0.1:65536": `"127.0.0.1:65536": bad port`,
		"dns.example:53":  `"dns.example:53": "dns.example" is not an IP address`,
		"fe80::1%eth0":    `"fe80::1%eth0" is not an IP address, IP:PORT or [IPv6]:PORT`,
		"::1:53":          `"::1:53" is not an IP address, IP:PORT or [IPv6]:PORT`,
	} {
		if in == "::1:53" {
			// A bare IPv6 address that happens to end in :53 is an
			// address, not a port: it must be written [::1]:53.
			got, err := resolverAddress(in)
			if err != nil || got != "[::1:53]:53" {
				t.Errorf("resolverAddress(%q) = %q, %v", in, got, err)
			}
			continue
		}
		_, err := resolverAddress(in)
		if err == nil || err.Error() != want {
			t.Errorf("resolverAddress(%q) error = %v, want %s", in, err, want)
		}
	}
}

func TestResolversFromResolvConf(t *testing.T) {
	cfg := mustParse(t, `sites = ["bl.example"]`)
	if want := []string{"127.0.0.1:53", "[::1]:53"}; !reflect.DeepEqual(cfg.Resolvers, want) {
		t.Errorf("resolvers = %q, want %q", cfg.Resolvers, want)
	}

	env := testParseEnv()
	env.ResolvConf = filepath.Join(t.TempDir(), "missing.conf")
	_, err := parseConfig([]byte(`sites = ["bl.example"]`), env)
	if err == nil || !strings.HasPrefix(err.Error(), "resolvers: none set, and the fallback failed: ") || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("error = %v", err)
	}
}

func TestEmbeddedDefaultConfig(t *testing.T) {
	cfg, err := parseConfig(defaultConfigFile, testParseEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenText != "inet:127.0.0.1:8890" {
		t.Errorf("listen = %q", cfg.ListenText)
	}
	if want := []string{"127.0.0.1:53", "[::1]:53"}; !reflect.DeepEqual(cfg.Resolvers, want) {
		t.Errorf("resolvers = %q, want those of resolv.conf %q", cfg.Resolvers, want)
	}
	if len(cfg.Engine.Lists) != 1 || cfg.Engine.Lists[0].Zone != "zen.spamhaus.org" {
		t.Errorf("lists = %#v", cfg.Engine.Lists)
	}
}

func TestLoadConfigSource(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	cfg, err := loadConfig("", missing, testParseEnv())
	if err != nil || cfg.Source != embeddedSource {
		t.Errorf("no file: source %v, %v; want the embedded default", cfg, err)
	}

	def := filepath.Join(dir, "rblmilter.toml")
	if err := os.WriteFile(def, []byte(`sites = ["bl.example"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig("", def, testParseEnv())
	if err != nil || cfg.Source != def || cfg.Engine.Lists[0].Zone != "bl.example" {
		t.Errorf("default path: %+v, %v", cfg, err)
	}

	if _, err := loadConfig(missing, def, testParseEnv()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-config of a missing file: %v, want not-exist", err)
	}
}

// The example config documents every key the parser knows.
func TestExampleDocumentsEveryKey(t *testing.T) {
	env := testParseEnv()
	env.keys = map[string]bool{}
	if _, err := parseFile(t, "testdata/full.toml", env); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../contrib/rblmilter.toml")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range env.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) < 40 {
		t.Fatalf("only %d keys recorded: %v", len(keys), keys)
	}
	for _, k := range keys {
		name := k[strings.LastIndexByte(k, '.')+1:]
		// Set or shown commented out at the start of a line, or a table.
		q := regexp.QuoteMeta(name)
		re := regexp.MustCompile(`(?m)^(#? ?` + q + ` = |\[` + q + `\]$|\[\[` + q + `\]\]$)`)
		if !re.Match(example) {
			t.Errorf("contrib/rblmilter.toml does not document %s", k)
		}
	}
}

func TestInlineListTables(t *testing.T) {
	cfg := mustParse(t, `list = [{zone = "a.example", weight = 2}, {zone = "b.example"}]`)
	if len(cfg.Engine.Lists) != 2 || cfg.Engine.Lists[0].Weight != 2 || cfg.Engine.Lists[1].Zone != "b.example" {
		t.Errorf("lists = %+v", cfg.Engine.Lists)
	}
}

// docs/configuration.md is the configuration reference: every key has a row
// in the table of its section ("Top level", or the section headed by its
// table, e.g. "`[cache]`"), and every table has such a section.
func TestConfigurationDocDocumentsEveryKey(t *testing.T) {
	const doc = "docs/configuration.md"
	text, err := os.ReadFile("../../" + doc)
	if err != nil {
		t.Fatalf("%s, the configuration reference: %v", doc, err)
	}
	sections := map[string]string{} // "## " heading -> its text
	for _, part := range strings.Split("\n"+string(text), "\n## ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		sections[heading] = body
	}
	section := func(table string) (string, bool) {
		for heading, body := range sections {
			if table == "" && heading == "Top level" ||
				table != "" && (strings.HasPrefix(heading, "`["+table+"]`") || strings.HasPrefix(heading, "`[["+table+"]]`")) {
				return body, true
			}
		}
		return "", false
	}
	for _, k := range configKeys(t) {
		body, ok := section(k.Table)
		if !ok {
			t.Errorf("%s has no section for %s (want a \"## `[%s]`\" heading)", doc, k.Path, k.Table)
			continue
		}
		if k.Name != "" && !strings.Contains(body, "\n| `"+k.Name+"` |") {
			t.Errorf("%s does not document %s (no \"| `%s` |\" row in its section)", doc, k.Path, k.Name)
		}
	}
}

// configKey is a key of the config file as the reference documents it:
// in the section of its Table ("" for the top level), by its Name. A table
// itself has an empty Name: its section documents it.
type configKey struct {
	Path, Table, Name string
}

// configKeys lists every key the parser knows, recorded while it reads
// testdata/full.toml, which sets them all.
func configKeys(t *testing.T) []configKey {
	t.Helper()
	env := testParseEnv()
	env.keys = map[string]bool{}
	if _, err := parseFile(t, "testdata/full.toml", env); err != nil {
		t.Fatal(err)
	}
	if len(env.keys) < 40 {
		t.Fatalf("only %d keys recorded from testdata/full.toml", len(env.keys))
	}
	isTable := func(k string) bool {
		for other := range env.keys {
			if strings.HasPrefix(other, k+".") || strings.HasPrefix(other, k+"[].") {
				return true
			}
		}
		return false
	}
	var keys []configKey
	for k := range env.keys {
		table, name, nested := strings.Cut(k, ".")
		switch {
		case nested:
			keys = append(keys, configKey{Path: k, Table: strings.TrimSuffix(table, "[]"), Name: name})
		case isTable(strings.TrimSuffix(k, "[]")):
			keys = append(keys, configKey{Path: k, Table: strings.TrimSuffix(k, "[]")})
		default:
			keys = append(keys, configKey{Path: k, Name: k})
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Path < keys[j].Path })
	return keys
}

// The Default column of docs/configuration.md is what the daemon does: a
// config that sets a key to its documented default parses to the same
// configuration as one that leaves the key out. Defaults that are
// described rather than written as one TOML value ("required", "the zone",
// a list's `timeout`) are left to the prose.
func TestConfigurationDocShowsTheDefaults(t *testing.T) {
	const doc = "docs/configuration.md"
	text, err := os.ReadFile("../../" + doc)
	if err != nil {
		t.Fatalf("%s, the configuration reference: %v", doc, err)
	}
	const list = "[[list]]\nzone = \"bl.example\"\n"
	// Keys documented for one type of list are tried on a list of it.
	const domainOnly = "`type = \"domain\"` only"
	configWith := func(table, line string, domain bool) string {
		switch {
		case table == "":
			return line + "\n" + list
		case table == "list" && domain:
			return list + "type = \"domain\"\n" + line + "\n"
		case table == "list":
			return list + line + "\n"
		default:
			return "[" + table + "]\n" + line + "\n" + list
		}
	}
	checked := 0
	table := ""
	for _, line := range strings.Split(string(text), "\n") {
		if heading, ok := strings.CutPrefix(line, "## "); ok {
			table = ""
			if span, ok := leadingCodeSpan(heading); ok {
				table = strings.Trim(span, "[]")
			}
			continue
		}
		cells := tableCells(line)
		if len(cells) < 3 {
			continue
		}
		key, isKey := leadingCodeSpan(cells[0])
		def, isValue := leadingCodeSpan(cells[2])
		if !isKey || !isValue {
			continue
		}
		var probe map[string]any
		if _, err := toml.Decode("x = "+def, &probe); err != nil {
			continue // a description in code font, not a value
		}
		name := key
		if table != "" {
			name = table + "." + key
		}
		domain := len(cells) > 3 && strings.HasPrefix(cells[3], domainOnly)
		want := mustParse(t, configWith(table, "", domain))
		got, err := parseConfig([]byte(configWith(table, key+" = "+def, domain)), testParseEnv())
		if err != nil {
			t.Errorf("%s: %s = %s, the documented default, is refused: %v", doc, name, def, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s = %s, the documented default, is not what leaving it out gives:\n got %+v\nwant %+v", doc, name, def, got, want)
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("%s: only %d documented defaults checked", doc, checked)
	}
}

// tableCells splits a markdown table row into its trimmed cells, keeping
// escaped pipes (\|) inside a cell; nil when line is not a row.
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
		return nil
	}
	line = strings.ReplaceAll(line[1:len(line)-1], `\|`, "\x00")
	var cells []string
	for _, c := range strings.Split(line, "|") {
		cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
	}
	return cells
}

// leadingCodeSpan returns the text of the code span s starts with.
func leadingCodeSpan(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "`")
	if !ok {
		return "", false
	}
	span, _, ok := strings.Cut(rest, "`")
	return span, ok
}
