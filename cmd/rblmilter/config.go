package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/rblmilter/rblmilter/milter"
	"github.com/rblmilter/rblmilter/rbl"
)

// defaultConfigFile is the config used when there is no -config flag and
// no file at the default path, so that `go run ./cmd/rblmilter` works on a
// fresh machine.
//
//go:embed default.toml
var defaultConfigFile []byte

// embeddedSource names the embedded default config in messages.
const embeddedSource = "embedded default config"

// Defaults of the config keys that only the daemon has; they are applied
// only in parseConfig. The other keys default to what package milter or
// rbl does for a zero setting (milter.DefaultTimeout, rbl.DefaultCacheSize,
// ...), referenced where the key is read.
const (
	defaultListen        = "inet:127.0.0.1:8890"
	defaultDrainTimeout  = 10 * time.Second
	defaultMetricsListen = "127.0.0.1:9890"
)

func defaultExemptRecipients() []string { return []string{"postmaster", "abuse"} }

// daemonConfig is a validated configuration with every default applied,
// converted to what the rbl and milter packages take.
type daemonConfig struct {
	// Source is the file it was read from, or embeddedSource.
	Source string

	Listen milter.SocketSpec
	// ListenText is the spec as written, for messages.
	ListenText string
	Socket     milter.SocketOptions
	// Resolvers are "host:port"; when the file has none they come from
	// resolv.conf.
	Resolvers []string
	Engine    rbl.Config
	// Cache is nil when [cache] size = 0 switches caching off.
	Cache          *rbl.CacheConfig
	Policy         milter.Policy
	DrainTimeout   time.Duration
	HealthInterval time.Duration
	// User and Group are who the daemon becomes after binding its sockets.
	User, Group string
	Log         logConfig
	Metrics     metricsConfig
}

type logConfig struct {
	// JSON selects slog's JSON handler instead of its text handler.
	JSON  bool
	Level slog.Level
}

type metricsConfig struct {
	// Listen is "host:port"; empty disables the HTTP listener.
	Listen string
	Pprof  bool
}

// parseEnv is what parseConfig needs from the machine, injectable for
// tests.
type parseEnv struct {
	// ResolvConf is read when the config lists no resolvers.
	ResolvConf string
	// ListenOverride is the -listen flag; it replaces the listen key.
	ListenOverride string
	// LookupUser and LookupGroup check that names in the config exist.
	LookupUser  func(name string) error
	LookupGroup func(name string) error
	// keys, when non-nil, receives every key path the schema knows.
	keys map[string]bool
}

// configError lists every problem found in a config file.
type configError struct {
	Problems []string
}

func (e *configError) Error() string { return strings.Join(e.Problems, "\n") }

// loadConfig reads the config from path; an empty path means defaultPath
// when that file exists, else the embedded default.
func loadConfig(path, defaultPath string, env parseEnv) (*daemonConfig, error) {
	data, source, err := readConfig(path, defaultPath)
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(data, env)
	if err != nil {
		return nil, err
	}
	cfg.Source = source
	return cfg, nil
}

func readConfig(path, defaultPath string) (data []byte, source string, err error) {
	if path == "" {
		data, err := os.ReadFile(defaultPath)
		if errors.Is(err, fs.ErrNotExist) {
			return defaultConfigFile, embeddedSource, nil
		}
		// An existing but unreadable default file is an error, not a
		// reason to run silently on the embedded default.
		return data, defaultPath, err
	}
	data, err = os.ReadFile(path)
	return data, path, err
}

// parseConfig decodes and validates a TOML config. It reports every
// problem it finds, each naming the key path and the bad value.
func parseConfig(data []byte, env parseEnv) (*daemonConfig, error) {
	var values map[string]any
	if _, err := toml.Decode(string(data), &values); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &configError{[]string{parseErrorMessage(data, pe)}}
		}
		return nil, &configError{[]string{err.Error()}}
	}
	p := &problems{keys: env.keys}
	root := newTable(p, "", "", values)
	cfg := &daemonConfig{}

	listenKey, listen := "listen", root.str("listen", defaultListen)
	if env.ListenOverride != "" {
		listenKey, listen = "-listen", env.ListenOverride
	}
	if spec, err := milter.ParseSocket(listen); err != nil {
		p.addf(listenKey, "%s", err)
	} else {
		cfg.Listen, cfg.ListenText = spec, listen
	}
	cfg.Socket.Mode = socketMode(root)
	cfg.Socket.Owner = account(root, "socket_owner", env.LookupUser, "user")
	cfg.Socket.Group = account(root, "socket_group", env.LookupGroup, "group")
	cfg.User = account(root, "user", env.LookupUser, "user")
	cfg.Group = account(root, "group", env.LookupGroup, "group")

	cfg.Resolvers = resolvers(root, env.ResolvConf)

	timeout := root.duration("timeout", milter.DefaultTimeout, time.Millisecond)
	cfg.DrainTimeout = root.duration("drain_timeout", defaultDrainTimeout, 0)
	cfg.HealthInterval = root.duration("health_interval", rbl.DefaultHealthInterval, time.Second)

	cfg.Engine.Timeout = timeout
	cfg.Engine.Threshold = root.integer("threshold", rbl.DefaultThreshold)
	if err := rbl.CheckThreshold(cfg.Engine.Threshold); err != nil {
		p.addf("threshold", "%s", err)
	}
	cfg.Engine.AllowlistThreshold = root.integer("allowlist_threshold", 0)
	if err := rbl.CheckAllowlistThreshold(cfg.Engine.AllowlistThreshold); err != nil {
		p.addf("allowlist_threshold", "%s", err)
	}
	cfg.Engine.TagThreshold = tagThreshold(root, cfg.Engine.Threshold)

	cfg.Policy = policy(root, timeout)

	siteLists := sites(root)
	fileLists, replies := lists(root, timeout, cfg.Policy.Stage)
	cfg.Engine.Lists = append(siteLists, fileLists...)
	countAuthenticated(cfg.Engine.Lists, cfg.Policy.SkipAuthenticated)
	if len(replies) > 0 {
		// ListReplies lines up with the engine's entries, sites first.
		cfg.Policy.ListReplies = append(make([]milter.ListReply, len(siteLists)), replies...)
	}
	cfg.Engine.FetchAllowlistTXT = cfg.Policy.ResultsHeader
	cacheTable := root.sub("cache")
	logTable := root.sub("log")
	metricsTable := root.sub("metrics")
	root.finish()

	if len(cfg.Engine.Lists) == 0 && len(p.list) == 0 {
		p.addf("", "no DNS lists configured: set sites or add a [[list]] table")
	}
	cfg.Cache = cacheConfig(cacheTable)
	cfg.Log = logSettings(logTable)
	cfg.Metrics = metricsSettings(metricsTable)

	if len(p.list) > 0 {
		return nil, &configError{p.list}
	}
	return cfg, nil
}

func socketMode(t *table) os.FileMode {
	v, ok := t.get("socket_mode")
	if !ok {
		return milter.DefaultSocketMode
	}
	var mode int64
	var err error
	switch x := v.(type) {
	case string:
		// Written as in chmod: "0660" or "660", always octal.
		mode, err = strconv.ParseInt(x, 8, 32)
	case int64:
		// A TOML octal literal (0o660).
		mode = x
	default:
		err = errors.New("not a mode")
	}
	if err != nil || mode < 0 || mode > 0o777 {
		t.p.addf("socket_mode", "%s is not a file mode (like \"0660\")", show(v))
		return milter.DefaultSocketMode
	}
	return os.FileMode(mode)
}

// account reads a user or group name (or numeric id) and checks that it
// exists on this machine.
func account(t *table, key string, lookup func(string) error, kind string) string {
	name := t.str(key, "")
	if name == "" {
		return ""
	}
	if _, err := strconv.Atoi(name); err == nil {
		return name
	}
	if lookup != nil {
		if err := lookup(name); err != nil {
			t.p.addf(key, "%q: no such %s", name, kind)
			return ""
		}
	}
	return name
}

// lookupUser and lookupGroup are the real account checks.
func lookupUser(name string) error {
	_, err := user.Lookup(name)
	return err
}

func lookupGroup(name string) error {
	_, err := user.LookupGroup(name)
	return err
}

func resolvers(t *table, resolvConf string) []string {
	out, _ := t.strings("resolvers", func(_ int, s string) error {
		_, err := resolverAddress(s)
		return err
	})
	for i, s := range out {
		out[i], _ = resolverAddress(s)
	}
	if len(out) > 0 {
		return out
	}
	if v, _ := t.values["resolvers"].([]any); len(v) > 0 {
		return nil // every entry was bad and has been reported
	}
	servers, err := rbl.ServersFromResolvConf(resolvConf)
	if err != nil {
		t.p.addf("resolvers", "none set, and the fallback failed: %v", err)
		return nil
	}
	if len(servers) == 0 {
		t.p.addf("resolvers", "none set, and %s has no nameserver line", resolvConf)
	}
	return servers
}

// resolverAddress turns "IP", "IP:PORT" or "[IPv6]:PORT" into
// "host:port". Host names are refused: resolving the resolver would need
// a resolver.
func resolverAddress(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address, IP:PORT or [IPv6]:PORT", s)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: bad port", s)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

func policy(t *table, timeout time.Duration) milter.Policy {
	pol := milter.Policy{Timeout: timeout}
	pol.Action = enumOf(t, "action", milter.ActionReject, milter.Action.String,
		milter.ActionReject, milter.ActionTempfail, milter.ActionTag, milter.ActionLog)
	pol.Stage = enumOf(t, "stage", milter.StageConnect, milter.Stage.String, milter.StageConnect, milter.StageRcpt)
	pol.Reply = t.str("reply", milter.DefaultReply)
	pol.TempfailReply = t.str("tempfail_reply", milter.DefaultTempfailReply)
	pol.Header = t.str("header", milter.DefaultHeader)
	pol.ResultsHeader = t.boolean("results_header", false)
	if pol.Header == "" {
		// The milter reads an empty Header as its default; in the file
		// it can only be a mistake.
		msg := `"" is not a valid header field name`
		if pol.ResultsHeader {
			msg += ", and results_header = true adds that header to every message"
		}
		t.p.addf("header", "%s", msg)
	}
	pol.AuthservID = t.str("authserv_id", "")
	if t.has("authserv_id") && pol.AuthservID == "" {
		// Empty is the milter's "use {j}"; in the file it can only be a
		// mistake.
		t.p.addf("authserv_id", `"" is empty (leave the key out to use the MTA's host name, its {j} macro)`)
	}

	exempt, defined := t.strings("exempt_recipients", func(_ int, s string) error {
		if s == "" || strings.ContainsAny(s, " \t<>") {
			return fmt.Errorf("%q is not a local part or address (like \"postmaster\" or \"abuse@example.com\")", s)
		}
		return nil
	})
	if !defined {
		exempt = defaultExemptRecipients()
	}
	pol.ExemptRecipients = exempt
	pol.SkipAuthenticated = t.boolean("skip_authenticated", true)
	pol.PostscreenLog = t.boolean("postscreen_log", false)

	var skipDefined bool
	pol.Skip, skipDefined = prefixes(t, "skip")
	if !skipDefined {
		pol.Skip = milter.DefaultSkip()
	}
	pol.Allow, _ = prefixes(t, "allow")
	pol.Block, _ = prefixes(t, "block")
	// The templates and the header name are the milter package's to
	// judge; it names the key of every bad one.
	for _, err := range unjoin(milter.ValidatePolicy(pol)) {
		t.p.addf("", "%s", err)
	}
	return pol
}

// unjoin returns the errors that errors.Join put together: err itself when
// it is a single error, none when it is nil.
func unjoin(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// prefixes reads a list of CIDR networks; a bare address is one host.
func prefixes(t *table, key string) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	_, defined := t.strings(key, func(_ int, s string) error {
		pfx, err := parsePrefix(s)
		if err != nil {
			return err
		}
		out = append(out, pfx)
		return nil
	})
	return out, defined
}

func parsePrefix(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network (like \"192.0.2.0/24\" or \"2001:db8::/32\")", s)
	}
	if pfx.Masked() != pfx {
		// 10.0.0.1/8 is most likely a typo; guessing could block or
		// allow far more (or less) than meant.
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %q?)", s, pfx.Masked().String())
	}
	return pfx, nil
}

func sites(t *table) []rbl.List {
	var out []rbl.List
	t.strings("sites", func(_ int, s string) error {
		l, err := rbl.ParseSite(s)
		if err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out
}

// lists reads the [[list]] tables, and each one's own reply templates
// (nil when no list has any).
func lists(root *table, timeout time.Duration, stage milter.Stage) ([]rbl.List, []milter.ListReply) {
	var out []rbl.List
	var replies []milter.ListReply
	anyReply := false
	for _, t := range root.tables("list") {
		var l rbl.List
		ok := true
		l.Zone = strings.TrimSuffix(t.str("zone", ""), ".")
		if !t.has("zone") {
			t.p.addf(t.keyPath("zone"), "missing (every [[list]] needs the DNS zone to query)")
			ok = false
		} else if err := rbl.CheckZone(l.Zone); err != nil {
			t.p.addf(t.keyPath("zone"), "%q is not a DNS zone: %s", l.Zone, err)
			ok = false
		}
		l.Name = t.str("name", l.Zone)
		l.Key = secretStr(t, "key")
		if l.Key != "" && rbl.CheckLabel(l.Key) != nil {
			// The key is a secret: never echo it.
			t.p.addf(t.keyPath("key"), "not a valid DNS label (letters, digits, '-' and '_', at most 63 characters; the key itself is not shown)")
			ok = false
		}
		l.Weight = t.integer("weight", 1)
		t.strings("filters", func(_ int, s string) error {
			f, err := rbl.ParseFilter(s)
			if err != nil {
				ok = false
				return err
			}
			l.Filters = append(l.Filters, f)
			return nil
		})
		l.Timeout = t.duration("timeout", 0, time.Millisecond)
		if l.Timeout > timeout {
			t.p.addf(t.keyPath("timeout"), "%q is longer than the whole-connection timeout %q", fmtDuration(l.Timeout), fmtDuration(timeout))
		}
		l.OnError = enumOf(t, "on_error", rbl.FailIgnore, rbl.FailurePolicy.String, rbl.FailIgnore, rbl.FailTempfail)
		l.Type = enumOf(t, "type", rbl.IPList, rbl.ListType.String, rbl.IPList, rbl.DomainList)
		ok = listChecks(t, &l) && ok
		l.Shadow = t.boolean("shadow", false)
		l.Monitor = t.boolean("monitor", true)
		l.DailyQueries = t.integer("daily_queries", 0)
		if l.DailyQueries < 0 {
			t.p.addf(t.keyPath("daily_queries"), "%d is negative (0 means no limit)", l.DailyQueries)
			ok = false
		}
		l.Sessions = listSessions(t, stage)
		reply := listReply(t)
		t.finish()
		if ok {
			out = append(out, l)
			replies = append(replies, reply)
			anyReply = anyReply || reply != milter.ListReply{}
		}
	}
	if !anyReply {
		replies = nil
	}
	return out, replies
}

// listChecks reads what a list is asked about: the address families of an
// IP list, the names of a domain list. It reports whether they are usable.
func listChecks(t *table, l *rbl.List) bool {
	if l.Type == rbl.IPList {
		l.IPv4 = t.boolean("ipv4", true)
		l.IPv6 = t.boolean("ipv6", true)
		if t.has("checks") {
			t.p.addf(t.keyPath("checks"), "applies only to type = \"domain\" lists (an IP list is asked about the client's address)")
			return false
		}
		if !l.IPv4 && !l.IPv6 {
			t.p.addf(t.path, "ipv4 and ipv6 are both false, so the list would never be asked")
			return false
		}
		return true
	}
	for _, key := range []string{"ipv4", "ipv6"} {
		if t.has(key) {
			t.p.addf(t.keyPath(key), "applies only to type = \"ip\" lists (a domain list is asked about names, whatever the client's address family)")
			return false
		}
	}
	l.Checks = rbl.DefaultDomainChecks
	ok := true
	words, defined := t.strings("checks", func(_ int, s string) error {
		if _, known := rbl.ParseCheck(s); !known || s == rbl.CheckIP.String() {
			ok = false
			return fmt.Errorf("%q is not one of client, reverse_client, helo, sender", s)
		}
		return nil
	})
	if defined {
		l.Checks = 0
		for _, w := range words {
			c, _ := rbl.ParseCheck(w)
			l.Checks |= rbl.Checks(c)
		}
		if ok && l.Checks == 0 {
			t.p.addf(t.keyPath("checks"), "empty, so the list would never be asked (leave it out for client, helo, sender)")
			return false
		}
	}
	if !ok {
		return false
	}
	if err := l.CheckForgeable(); err != nil {
		t.p.addf(t.path, "%s", err)
		return false
	}
	return true
}

func cacheConfig(t *table) *rbl.CacheConfig {
	c := &rbl.CacheConfig{
		Size:     t.integer("size", rbl.DefaultCacheSize),
		MinTTL:   t.duration("min_ttl", rbl.DefaultMinTTL, time.Second),
		MaxTTL:   t.duration("max_ttl", rbl.DefaultMaxTTL, time.Second),
		ErrorTTL: t.duration("error_ttl", 0, 0),
	}
	t.finish()
	if c.Size < 0 {
		t.p.addf("cache.size", "%d is negative (0 switches the cache off)", c.Size)
	}
	if c.MinTTL > c.MaxTTL {
		t.p.addf("cache.min_ttl", "%q is longer than cache.max_ttl %q", fmtDuration(c.MinTTL), fmtDuration(c.MaxTTL))
	}
	if c.Size == 0 {
		return nil
	}
	return c
}

func logSettings(t *table) logConfig {
	var c logConfig
	c.JSON = t.enum("format", "text", "text", "json") == "json"
	c.Level = enumOf(t, "level", slog.LevelInfo, func(l slog.Level) string { return strings.ToLower(l.String()) },
		slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError)
	t.finish()
	return c
}

func metricsSettings(t *table) metricsConfig {
	c := metricsConfig{
		Listen: t.str("listen", defaultMetricsListen),
		Pprof:  t.boolean("pprof", false),
	}
	if c.Listen != "" {
		_, port, err := net.SplitHostPort(c.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			t.p.addf("metrics.listen", "%q is not HOST:PORT (like \"127.0.0.1:9890\"; \"\" switches metrics off)", c.Listen)
		}
	}
	t.finish()
	return c
}

// fmtDuration writes d the way an admin would: "2h", not "2h0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
