package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// version and revision are stamped at build time by scripts/release.sh:
//
//	-ldflags "-X main.version=v1.2.3 -X main.revision=0123456789ab"
//
// revision is the commit, with "-dirty" when the tree had changes. It is set
// explicitly because Go records no VCS information for builds in a git
// worktree, and release builds turn that recording off so that a worktree
// and a clone of one commit build the same bytes.
var (
	version  = "dev"
	revision = ""
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // runtime failure, bad config, or (check) a rejection
	exitUsage = 2 // bad flags or arguments
)

// environment is everything run takes from the machine, so that tests can
// run the whole program in-process.
type environment struct {
	stdout, stderr io.Writer
	// defaultConfig is read when -config is not given and the file exists.
	defaultConfig string
	// resolvConf supplies the resolvers when the config has none.
	resolvConf string
	// signals starts delivery of SIGHUP, SIGTERM and SIGINT to the daemon
	// and returns a function that stops it.
	signals func() (<-chan os.Signal, func())
	// lookupUser and lookupGroup check account names in the config.
	lookupUser, lookupGroup func(string) error
	// identity is read and changed to drop root privileges after binding;
	// nil leaves the process as it is (in-process tests).
	identity identity
	// adoptLogger, when set, routes the standard library's log package
	// through the daemon's logger: go-milter reports broken sessions with
	// log.Printf, which would otherwise interleave unstructured lines with
	// the JSON or text log. Nil in in-process tests, which share one
	// process.
	adoptLogger func(*slog.Logger)
	// noQuickACK turns off the milter's TCP_QUICKACK re-arm
	// (milter.ServerOptions.NoQuickACK); see noQuickACKEnv.
	noQuickACK bool
}

// noQuickACKEnv names the environment variable that, set to any value,
// stops the TCP_QUICKACK re-arm. It exists for the integration test that
// runs the real binary to show the Sendmail stall coming back without it
// (integration/sendmail_latency_test.go); never set it in production. It
// is an environment variable rather than a flag because flag.PrintDefaults
// would list a flag in -help, among the settings admins are meant to use,
// and make it part of the command line's contract; the library itself
// only takes the option.
const noQuickACKEnv = "RBLMILTER_TEST_NO_QUICKACK"

func systemEnvironment() environment {
	return environment{
		stdout:        os.Stdout,
		stderr:        os.Stderr,
		defaultConfig: "/etc/rblmilter/rblmilter.toml",
		resolvConf:    "/etc/resolv.conf",
		signals: func() (<-chan os.Signal, func()) {
			c := make(chan os.Signal, 8)
			signal.Notify(c, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
			return c, func() { signal.Stop(c) }
		},
		lookupUser:  lookupUser,
		lookupGroup: lookupGroup,
		identity:    systemIdentity{},
		adoptLogger: slog.SetDefault,
		noQuickACK:  os.Getenv(noQuickACKEnv) != "",
	}
}

func (env environment) parseEnv(listenOverride string) parseEnv {
	return parseEnv{
		ResolvConf:     env.resolvConf,
		ListenOverride: listenOverride,
		LookupUser:     env.lookupUser,
		LookupGroup:    env.lookupGroup,
	}
}

const usageText = `Usage:
  rblmilter [-config FILE] [-listen SPEC]     run the milter daemon
  rblmilter -check-config [-config FILE]      validate the config and exit
  rblmilter check [-config FILE] [-json] [-client-name NAME] [-helo NAME] [-sender ADDRESS] IP...
                                              look addresses (and names) up as the daemon would
  rblmilter -version

Without -config, %s is read if it exists, else a built-in
default (listen inet:127.0.0.1:8890, zen.spamhaus.org, resolvers from %s).
Signals: SIGHUP reloads the config, SIGTERM/SIGINT drain sessions and stop.

Flags:
`

// run is the whole program; it returns the exit code. Cancelling ctx
// stops the daemon like SIGTERM.
func run(ctx context.Context, args []string, env environment) int {
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, args[1:], "", env)
	}
	fs := flag.NewFlagSet("rblmilter", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	configPath := fs.String("config", "", "config `FILE` (TOML)")
	listen := fs.String("listen", "", "milter socket `SPEC`, overriding the config's listen (inet:127.0.0.1:8890, unix:/path, ...)")
	checkConfig := fs.Bool("check-config", false, "validate the config, print every problem, and exit (0 when valid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usageText, env.defaultConfig, env.resolvConf)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		if fs.Arg(0) == "check" {
			return runCheck(ctx, fs.Args()[1:], *configPath, env)
		}
		fmt.Fprintf(env.stderr, "rblmilter: unexpected argument %q (see rblmilter -help)\n", fs.Arg(0))
		return exitUsage
	}
	switch {
	case *showVersion:
		fmt.Fprintln(env.stdout, versionString())
		return exitOK
	case *checkConfig:
		return runCheckConfig(*configPath, *listen, env)
	default:
		return runDaemon(ctx, *configPath, *listen, env)
	}
}

// runCheckConfig validates the config as the daemon would at start,
// without opening sockets or sending DNS queries.
func runCheckConfig(path, listen string, env environment) int {
	cfg, err := loadConfig(path, env.defaultConfig, env.parseEnv(listen))
	if err == nil {
		err = validateEngine(cfg)
	}
	if err != nil {
		printConfigError(env.stderr, path, env.defaultConfig, err)
		return exitError
	}
	fmt.Fprintf(env.stdout, "%s: OK (%d lists, listen %s)\n", cfg.Source, len(cfg.Engine.Lists), cfg.ListenText)
	return exitOK
}

// printConfigError prints one problem per line, each prefixed with the
// file, so the admin can fix them all in one go.
func printConfigError(w io.Writer, path, defaultPath string, err error) {
	source := path
	if source == "" {
		source = defaultPath
	}
	var ce *configError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintf(w, "%s: %s\n", source, p)
		}
		return
	}
	fmt.Fprintf(w, "rblmilter: %v\n", err)
}

// versionString is the -version output: the release set at build time (or
// the module version of `go install ...@vX`), the revision stamped at build
// time or else the VCS revision Go recorded, and the Go version.
func versionString() string {
	v := version
	var vcs []string
	if revision != "" {
		vcs = append(vcs, revision)
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		if revision == "" {
			vcs = append(vcs, recordedRevision(info)...)
		}
	}
	vcs = append(vcs, runtime.Version())
	return fmt.Sprintf("rblmilter %s (%s)", v, strings.Join(vcs, ", "))
}

// recordedRevision is the commit and commit time Go's VCS stamping
// recorded, when it did.
func recordedRevision(info *debug.BuildInfo) []string {
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	var out []string
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if settings["vcs.modified"] == "true" {
			rev += "-dirty"
		}
		out = append(out, rev)
	}
	if t := settings["vcs.time"]; t != "" {
		out = append(out, t)
	}
	return out
}
