package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// Exit codes: run exits 1 when any session failed, so scripts (soak
// tests) can rely on the status alone.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// cliEnv is what the commands need from the process, injected so that
// tests run them in-process.
type cliEnv struct {
	stdout, stderr io.Writer
	// usr1 delivers SIGUSR1: the dns command prints its counters.
	usr1 <-chan os.Signal
	// ready, if set, is told each server's bound address (tests use
	// port 0 and need to learn the port).
	ready func(addr string)
}

const usageText = `milterbench measures a milter from outside, the way an MTA uses it.

Usage:
  milterbench run  [flags] [SOCKET]   drive concurrent milter sessions and report
  milterbench dns  [flags]            serve generated DNSBL zones for benchmarks
  milterbench null [flags]            a milter answering ACCEPT at connect (baseline)
  milterbench smtp [flags] HOST:PORT  drive SMTP sessions from real client addresses

SOCKET is an MTA-style milter address: inet:HOST:PORT, inet:PORT@HOST,
inet6:PORT@[::1], unix:/path or local:/path.

Run "milterbench COMMAND -h" for a command's flags.
`

func runCLI(ctx context.Context, args []string, env cliEnv) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], env)
	case "dns":
		return cmdDNS(ctx, args[1:], env)
	case "null":
		return cmdNull(ctx, args[1:], env)
	case "smtp":
		return cmdSMTP(ctx, args[1:], env)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(env.stderr, "milterbench: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

// newFlagSet makes a flag set whose -h prints a usage header first.
func newFlagSet(name, synopsis string, env cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet("milterbench "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: milterbench %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags returns the exit code to use when parsing ends the command.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func usageErr(env cliEnv, cmd string, err error) int {
	fmt.Fprintf(env.stderr, "milterbench %s: %v\n", cmd, err)
	return exitUsage
}

func cmdRun(ctx context.Context, args []string, env cliEnv) int {
	fs := newFlagSet("run", "run [flags] [SOCKET]\n\nDrives concurrent milter sessions like Postfix's smtpd: a new connection per\nclient, negotiate, connect macros, CONNECT with the client IP, the verdict,\nthen close. Client IPs come from a mix; an IP is \"listed\" when it lies in\n-listed-net, the rule \"milterbench dns\" answers by. Exit status 1 if any\nsession failed.", env)
	socket := fs.String("socket", "inet:127.0.0.1:8890", "milter `SOCKET` (or give it as the argument)")
	pf := addPlanFlags(fs, 10)
	stageS := fs.String("stage", "connect", "go on to helo, mail, rcpt or eom (a message: headers, body, end of message)\nwhile the milter answers continue")
	var headers stringList
	fs.Var(&headers, "header", "with -stage eom, another header field `\"Name: value\"` sent after the usual ones\n(repeatable), e.g. a forged copy of the milter's own header")
	timeout := fs.Duration("timeout", 10*time.Second, "dial and per-command timeout")
	hostname := fs.String("hostname", "mx.bench.test", "MTA hostname (macros j, {daemon_name})")
	client := addClientFlags(fs, "HELO")
	auth := fs.Bool("auth", false, "send SASL macros ({auth_authen}) at MAIL")
	pid := fs.Int("pid", 0, "target process `PID`: report its CPU time and RSS over the run")
	pprofURL := fs.String("pprof", "", "target's pprof `URL` (http://127.0.0.1:9890/debug/pprof/): fetch a CPU profile during the run")
	pprofSecs := fs.Int("pprof-seconds", 0, "CPU profile length (default: -duration, else 10)")
	pprofOut := fs.String("pprof-out", "milterbench-cpu.pprof", "`FILE` for the CPU profile")
	actions := fs.String("actions", "0x3f", "milter action mask offered at negotiation")
	protocol := fs.String("protocol", "0x7f", "milter protocol mask offered at negotiation")
	metricsURL := fs.String("metrics", "", "target's Prometheus `URL` (http://127.0.0.1:9890/metrics): report goroutines and RSS\nbefore, after, and once they return to the baseline")
	var extraMetrics stringList
	fs.Var(&extraMetrics, "metric", "another metric `NAME` to report with -metrics (repeatable)")
	settle := fs.Duration("settle", 10*time.Second, "with -metrics: how long to wait for goroutines to return to the baseline")
	selfProfile := fs.String("cpuprofile", "", "write milterbench's own CPU profile to `FILE` (how much the generator costs)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageErr(env, "run", fmt.Errorf("one SOCKET argument at most, got %q", fs.Args()))
	}
	if fs.NArg() == 1 {
		*socket = fs.Arg(0)
	}

	cfg, err := func() (loadConfig, error) {
		target, err := socketspec.Parse(*socket)
		if err != nil {
			return loadConfig{}, err
		}
		plan, err := pf.plan()
		if err != nil {
			return loadConfig{}, err
		}
		st, err := parseStage(*stageS)
		if err != nil {
			return loadConfig{}, err
		}
		extra, err := parseHeaders(headers)
		if err != nil {
			return loadConfig{}, err
		}
		if len(extra) > 0 && st != stageEOM {
			return loadConfig{}, fmt.Errorf("-header needs -stage eom (headers are sent with the message)")
		}
		am, err := parseMask("-actions", *actions)
		if err != nil {
			return loadConfig{}, err
		}
		pm, err := parseMask("-protocol", *protocol)
		if err != nil {
			return loadConfig{}, err
		}
		if *timeout <= 0 {
			return loadConfig{}, fmt.Errorf("-timeout %s: must be positive", *timeout)
		}
		return loadConfig{
			drivePlan: plan,
			Target:    target, Stage: st,
			Timeout: *timeout, Hostname: *hostname, Helo: *client.helo, From: *client.from, Rcpt: *client.rcpt, Auth: *auth,
			ActionMask: milter.OptAction(am), ProtocolMask: milter.OptProtocol(pm),
			Headers: extra,
		}, nil
	}()
	if err != nil {
		return usageErr(env, "run", err)
	}
	var profURL string
	if *pprofURL != "" {
		secs := *pprofSecs
		if secs <= 0 {
			secs = 10
			if cfg.Duration > 0 {
				secs = int(math.Ceil(cfg.Duration.Seconds()))
			}
		}
		if profURL, err = profileURL(*pprofURL, secs); err != nil {
			return usageErr(env, "run", err)
		}
	}
	var before procSample
	if *pid != 0 {
		if before, err = readProc("/proc", *pid); err != nil {
			return usageErr(env, "run", err)
		}
	}

	var metrics *metricsReport
	metricNames := append(slices.Clone(defaultMetrics), extraMetrics...)
	if *metricsURL != "" {
		metrics = &metricsReport{URL: *metricsURL}
		if metrics.Before, err = scrapeMetrics(ctx, http.DefaultClient, *metricsURL, metricNames); err != nil {
			return usageErr(env, "run", fmt.Errorf("-metrics: %w", err))
		}
	}
	var profDone chan *profileReport
	var cpuStart time.Duration
	cfg.OnStart = func() {
		cpuStart = selfCPU()
		if *pid != 0 {
			before, _ = readProc("/proc", *pid) // after warm-up
		}
		if metrics != nil {
			if m, err := scrapeMetrics(ctx, http.DefaultClient, *metricsURL, metricNames); err == nil {
				metrics.Before = m // after warm-up
			}
		}
		if profURL != "" {
			profDone = make(chan *profileReport, 1)
			go func() { profDone <- fetchProfile(ctx, http.DefaultClient, profURL, *pprofOut) }()
		}
	}
	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			return usageErr(env, "run", fmt.Errorf("-cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageErr(env, "run", fmt.Errorf("-cpuprofile: %w", err))
		}
	}
	res, err := runLoad(ctx, cfg)
	if *selfProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return usageErr(env, "run", err)
	}
	rep := res.report()
	rep.Client = clientCPU(cpuStart, rep.Sessions)
	if *pid != 0 {
		if after, err := readProc("/proc", *pid); err == nil {
			rep.TargetProcess = processDelta(*pid, before, after, rep.Sessions)
		} else {
			fmt.Fprintf(env.stderr, "milterbench run: %v\n", err)
		}
	}
	if metrics != nil {
		if metrics.After, err = scrapeMetrics(ctx, http.DefaultClient, *metricsURL, metricNames); err != nil {
			metrics.Error = err.Error()
		}
	}
	if profDone != nil {
		rep.Profile = <-profDone
	}
	if metrics != nil && metrics.Error == "" {
		settleMetrics(ctx, http.DefaultClient, metrics, metricNames, *settle, time.Now)
	}
	rep.Metrics = metrics
	return printReport(env.stdout, *client.json, rep, rep.Errors > 0 || rep.Interrupted)
}

// clientFlags are the flags of the commands that act as the client (run,
// smtp): what it says in its session, and how the report is printed.
type clientFlags struct {
	helo, from, rcpt *string
	json             *bool
}

// addClientFlags registers the clientFlags; greeting is the command the
// client greets with, "HELO" or "EHLO".
func addClientFlags(fs *flag.FlagSet, greeting string) *clientFlags {
	return &clientFlags{
		helo: fs.String("helo", "client.bench.test", greeting+" name"),
		from: fs.String("from", "sender@bench.test", "MAIL FROM address"),
		rcpt: fs.String("rcpt", "user@bench.test", "RCPT TO address"),
		json: fs.Bool("json", false, "print the report as JSON"),
	}
}

// printReport prints rep, as JSON or for a terminal, and returns the exit
// status: exitFail when the run failed (any session failed, or it was
// interrupted).
func printReport(w io.Writer, asJSON bool, rep interface{ writeText(io.Writer) }, failed bool) int {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.writeText(w)
	}
	if failed {
		return exitFail
	}
	return exitOK
}

// planFlags are the flags of the commands that drive sessions: how many,
// how many at once, and the client address mix.
type planFlags struct {
	sessions              *uint64
	duration              *time.Duration
	conc                  *int
	listed, repeat, ipv6  *string
	pool, offset          *uint64
	listedNets, cleanNets *string
	warmup                *bool
}

func addPlanFlags(fs *flag.FlagSet, conc int) *planFlags {
	return &planFlags{
		sessions: fs.Uint64("n", 0, "sessions to run; with -duration too, whichever ends first (default 10000 unless -duration is given)"),
		duration: fs.Duration("duration", 0, "stop starting sessions after this long"),
		conc:     fs.Int("c", conc, "concurrent sessions"),
		listed:   fs.String("listed", "0.1", "share of sessions with a listed client IP (0..1 or 0%..100%)"),
		repeat:   fs.String("repeat", "0", "share of sessions reusing an IP from the pool (cache hits)"),
		ipv6:     fs.String("ipv6", "0", "share of IPv6 client IPs"),
		pool:     fs.Uint64("pool", 1000, "distinct IPs in the repeat pool"),
		offset: fs.Uint64("offset", 0, "skip this many addresses in every network: the same flags send the same IPs,\n"+
			"so a second run against a running target needs another offset to miss its cache"),
		listedNets: fs.String("listed-net", defaultListedNets, "`CIDRs` whose addresses the test zones list"),
		cleanNets:  fs.String("clean-net", defaultCleanNets, "`CIDRs` of clean client addresses"),
		warmup:     fs.Bool("warmup", false, "send every pooled IP once before measuring"),
	}
}

// plan validates the flags into a drivePlan.
func (f *planFlags) plan() (drivePlan, error) {
	listed, err := parseFraction("-listed", *f.listed)
	if err != nil {
		return drivePlan{}, err
	}
	repeat, err := parseFraction("-repeat", *f.repeat)
	if err != nil {
		return drivePlan{}, err
	}
	ipv6, err := parseFraction("-ipv6", *f.ipv6)
	if err != nil {
		return drivePlan{}, err
	}
	ln, err := parseNets("-listed-net", *f.listedNets)
	if err != nil {
		return drivePlan{}, err
	}
	cn, err := parseNets("-clean-net", *f.cleanNets)
	if err != nil {
		return drivePlan{}, err
	}
	m, err := newMix(listed, repeat, ipv6, *f.pool, ln, cn)
	if err != nil {
		return drivePlan{}, err
	}
	m.offset = *f.offset
	if *f.duration < 0 {
		return drivePlan{}, fmt.Errorf("-duration %s: must not be negative", *f.duration)
	}
	if *f.conc < 1 {
		return drivePlan{}, fmt.Errorf("-c %d: need at least 1 concurrent session", *f.conc)
	}
	n := *f.sessions
	if n == 0 && *f.duration == 0 {
		n = 10000
	}
	return drivePlan{Sessions: n, Duration: *f.duration, Concurrency: *f.conc, Mix: m, Warmup: *f.warmup}, nil
}

// parseMask reads a milter option mask in hex (0x3f) or decimal.
func parseMask(flag, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a 32-bit mask like 0x3f", flag, s)
	}
	return uint32(v), nil
}

// parseHeaders splits each "Name: value" of -header.
func parseHeaders(list []string) ([][2]string, error) {
	var out [][2]string
	for _, h := range list {
		name, value, ok := strings.Cut(h, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("-header %q: want \"Name: value\" on one line", h)
		}
		out = append(out, [2]string{name, strings.TrimLeft(value, " \t")})
	}
	return out, nil
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, "; ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdDNS(ctx context.Context, args []string, env cliEnv) int {
	fs := newFlagSet("dns", "dns [flags]\n\nServes generated DNSBL zones (RFC 5782) over UDP and TCP: an address in\n-listed-net gets an A record (-answer) and a TXT record, any other address\nNXDOMAIN with the zone's SOA. Counts every query; prints the counts on\nSIGUSR1 and at exit, and serves them as JSON at -stats (GET /stats,\n/stats?reset=1 to zero them).", env)
	listen := fs.String("listen", "127.0.0.1:5353", "UDP and TCP `ADDRESS` to answer on")
	zones := fs.String("zones", "bench.test", "comma-separated zone `NAMES`")
	var overrides stringList
	fs.Var(&overrides, "zone", "per-zone `SETTINGS`, repeatable: \"NAME key=value ...\" with keys delay, loss,\nanswer, listed (CIDRs or none), rcode (SERVFAIL, REFUSED...), ttl, negttl;\ne.g. -zone 'd.test loss=1' for a silent list")
	delay := fs.Duration("delay", 0, "delay before every answer")
	lossS := fs.String("loss", "0", "share of queries left unanswered")
	answer := fs.String("answer", "127.0.0.2", "A record for a listed address")
	listedNets := fs.String("listed-net", defaultListedNets, "`CIDRs` whose addresses are listed (same default as run)")
	ttl := fs.Uint("ttl", 300, "TTL of listed answers")
	negTTL := fs.Uint("negttl", 300, "SOA minimum: TTL of NXDOMAIN answers")
	statsAddr := fs.String("stats", "", "serve counters over HTTP at `ADDRESS` (like 127.0.0.1:5380)")
	seed := fs.Uint64("seed", 1, "seed for -loss")
	jsonOut := fs.Bool("json", false, "print the final counters as JSON")
	forward := fs.String("forward", "", "proxy to the DNS server at `ADDRESS` instead of generating answers: every query in\n-zones waits -delay (and -loss), then gets the upstream's answer; a DNSBL server\n(rbldnsd) placed at a distance, and counted")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr(env, "dns", fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	var upstream *dnsUpstream
	if *forward != "" {
		u, err := newDNSUpstream(*forward, 5*time.Second)
		if err != nil {
			return usageErr(env, "dns", err)
		}
		upstream = u
	}
	base := zoneConfig{Delay: *delay, TTL: uint32(min(*ttl, math.MaxUint32)), NegTTL: uint32(min(*negTTL, math.MaxUint32))}
	loss, err := parseFraction("-loss", *lossS)
	if err != nil {
		return usageErr(env, "dns", err)
	}
	base.Loss = float64(loss) / ppm
	if base.Answer, err = netip.ParseAddr(*answer); err != nil || !base.Answer.Is4() {
		return usageErr(env, "dns", fmt.Errorf("-answer %q: want an IPv4 address like 127.0.0.2", *answer))
	}
	if base.Listed, err = parseNets("-listed-net", *listedNets); err != nil {
		return usageErr(env, "dns", err)
	}
	if *delay < 0 {
		return usageErr(env, "dns", fmt.Errorf("-delay %s: must not be negative", *delay))
	}
	var cfgs []zoneConfig
	byName := map[string]int{}
	for _, n := range strings.Split(*zones, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		z, err := parseZoneOverride(n, base)
		if err != nil {
			return usageErr(env, "dns", fmt.Errorf("-zones: %w", err))
		}
		byName[z.Name] = len(cfgs)
		cfgs = append(cfgs, z)
	}
	for _, o := range overrides {
		name, _, _ := strings.Cut(strings.TrimSpace(o), " ")
		start := base
		if i, ok := byName[dns.Fqdn(strings.ToLower(name))]; ok {
			start = cfgs[i]
		}
		z, err := parseZoneOverride(o, start)
		if err != nil {
			return usageErr(env, "dns", err)
		}
		if i, ok := byName[z.Name]; ok {
			cfgs[i] = z
		} else {
			byName[z.Name] = len(cfgs)
			cfgs = append(cfgs, z)
		}
	}
	srv, err := newDNSBench(cfgs, *seed)
	if err != nil {
		return usageErr(env, "dns", err)
	}
	srv.upstream = upstream
	pc, ln, err := listenDNS(*listen)
	if err != nil {
		return usageErr(env, "dns", err)
	}
	if *statsAddr != "" {
		sl, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			pc.Close()
			ln.Close()
			return usageErr(env, "dns", fmt.Errorf("-stats %s: %w", *statsAddr, err))
		}
		hs := &http.Server{Handler: srv.statsHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(sl) }()
		defer hs.Close()
		fmt.Fprintf(env.stderr, "milterbench dns: counters at http://%s/stats\n", sl.Addr())
		if env.ready != nil {
			env.ready("stats " + sl.Addr().String())
		}
	}
	names := make([]string, len(cfgs))
	for i, z := range cfgs {
		names[i] = strings.TrimSuffix(z.Name, ".")
	}
	how := "serving"
	if upstream != nil {
		how = "forwarding to " + upstream.addr + ":"
	}
	fmt.Fprintf(env.stderr, "milterbench dns: %s %s on %s (udp+tcp)\n", how, strings.Join(names, ", "), pc.LocalAddr())
	if env.ready != nil {
		env.ready(pc.LocalAddr().String())
	}
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-serveCtx.Done():
				return
			case <-env.usr1:
				srv.stats(false).writeText(env.stderr)
			}
		}
	}()
	err = srv.serve(serveCtx, pc, ln)
	final := srv.stats(false)
	if *jsonOut {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(final)
	} else {
		final.writeText(env.stdout)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "milterbench dns: %v\n", err)
		return exitFail
	}
	return exitOK
}

func cmdNull(ctx context.Context, args []string, env cliEnv) int {
	fs := newFlagSet("null", "null [flags]\n\nA milter that answers every CONNECT at once with -verdict, built on the same\nlibrary as rblmilter (go-milter): the baseline cost of the milter protocol.", env)
	listen := fs.String("listen", "inet:127.0.0.1:8891", "milter `SOCKET` to listen on")
	verdictS := fs.String("verdict", "accept", "answer at connect: accept, continue, reject or tempfail")
	refuseS := fs.String("refuse", "", "`CIDRs` whose clients get a 554 reply at connect instead of -verdict\n(a refusing milter without lookups; e.g. -listed-net's default "+defaultListedNets+")")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr(env, "null", fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	verdict, err := parseVerdict(*verdictS)
	if err != nil {
		return usageErr(env, "null", err)
	}
	refuse, err := parseNets("-refuse", *refuseS)
	if err != nil {
		return usageErr(env, "null", err)
	}
	spec, err := socketspec.ParseListen(*listen)
	if err != nil {
		return usageErr(env, "null", fmt.Errorf("-listen: %w", err))
	}
	ln, err := listenSocket(spec)
	if err != nil {
		return usageErr(env, "null", err)
	}
	answer := *verdictS
	if len(refuse) > 0 {
		answer = fmt.Sprintf("554 to clients in %s, else %s,", *refuseS, *verdictS)
	}
	fmt.Fprintf(env.stderr, "milterbench null: answering %s at connect on %s\n", answer, specOf(ln))
	if env.ready != nil {
		env.ready(specOf(ln))
	}
	var connects atomic.Uint64
	err = serveMilter(ctx, ln, func() milter.Milter { return nullMilter{verdict: verdict, refuse: refuse, connects: &connects} })
	fmt.Fprintf(env.stdout, "connects %d\n", connects.Load())
	if err != nil {
		fmt.Fprintf(env.stderr, "milterbench null: %v\n", err)
		return exitFail
	}
	return exitOK
}

func cmdSMTP(ctx context.Context, args []string, env cliEnv) int {
	fs := newFlagSet("smtp", "smtp [flags] [HOST:PORT[,[V6HOST]:PORT]]\n\n"+
		"Drives SMTP sessions against an MTA, each from its client address in the mix\n"+
		"bound as the real source address: wait for the whole greeting, EHLO, MAIL,\n"+
		"RCPT, DATA, a small message, QUIT; QUIT at the first 4xx or 5xx. Reports per\n"+
		"class (listed, clean) where sessions ended and how fast, and the wrong\n"+
		"outcomes (listed accepted, clean refused). The addresses must be local: run\n"+
		"it in a network namespace with a local route for the client networks\n"+
		"(ip route add local 198.18.0.0/15 dev lo; for IPv6 also\n"+
		"sysctl net.ipv6.ip_nonlocal_bind=1), as scripts/bench-postfix.sh does.\n"+
		"Exit status 1 if any session failed.", env)
	server := fs.String("server", "", "MTA `ADDRESSES`: HOST:PORT, and [V6HOST]:PORT for IPv6 clients, comma-separated\n(or give them as the argument)")
	pf := addPlanFlags(fs, 10)
	timeout := fs.Duration("timeout", 60*time.Second, "dial and per-reply timeout (longer than postscreen's greet wait)")
	client := addClientFlags(fs, "EHLO")
	var cpu stringList
	fs.Var(&cpu, "cpu", "report the CPU of a process `NAME=PID` and all its descendants (children reaped\ninclusive) over the measured run; repeatable, a name given twice adds up")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageErr(env, "smtp", fmt.Errorf("one server argument at most, got %q", fs.Args()))
	}
	if fs.NArg() == 1 {
		*server = fs.Arg(0)
	}
	cfg := smtpConfig{Timeout: *timeout, Helo: *client.helo, From: *client.from, Rcpt: *client.rcpt}
	var err error
	if cfg.Server4, cfg.Server6, err = parseServers(*server); err != nil {
		return usageErr(env, "smtp", err)
	}
	if cfg.drivePlan, err = pf.plan(); err != nil {
		return usageErr(env, "smtp", err)
	}
	var watches []cpuWatch
	for _, c := range cpu {
		w, err := parseCPUWatch(c)
		if err != nil {
			return usageErr(env, "smtp", err)
		}
		watches = append(watches, w)
	}
	before, err := sampleTrees("/proc", watches)
	if err != nil {
		return usageErr(env, "smtp", err)
	}
	var cpuStart time.Duration
	cfg.OnStart = func() {
		cpuStart = selfCPU()
		if b, err := sampleTrees("/proc", watches); err == nil {
			before = b // after warm-up
		}
	}
	res, err := runSMTP(ctx, cfg)
	if err != nil {
		return usageErr(env, "smtp", err)
	}
	rep := res.report()
	rep.Client = clientCPU(cpuStart, rep.Sessions)
	if len(watches) > 0 {
		after, err := sampleTrees("/proc", watches)
		if err != nil {
			fmt.Fprintf(env.stderr, "milterbench smtp: %v\n", err)
			rep.Errors++
		} else {
			rep.CPU = treeDeltas(watches, before, after, rep.Sessions)
		}
	}
	return printReport(env.stdout, *client.json, rep, rep.Errors > 0 || rep.Interrupted)
}

// parseServers splits the -server list into the IPv4 and IPv6 server
// addresses; each must be a literal address with a port.
func parseServers(s string) (v4, v6 string, err error) {
	if strings.TrimSpace(s) == "" {
		return "", "", errors.New("-server: give the MTA's HOST:PORT")
	}
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		ap, perr := netip.ParseAddrPort(a)
		if perr != nil {
			return "", "", fmt.Errorf("-server %q: want IP:PORT or [IPv6]:PORT like 192.0.2.25:25", a)
		}
		slot := &v4
		if ap.Addr().Is6() && !ap.Addr().Is4In6() {
			slot = &v6
		}
		if *slot != "" {
			return "", "", fmt.Errorf("-server %q: two addresses of the same family (%s and %s)", s, *slot, a)
		}
		*slot = ap.String()
	}
	return v4, v6, nil
}
