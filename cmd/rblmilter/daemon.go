package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rblmilter/rblmilter/milter"
	"github.com/rblmilter/rblmilter/rbl"
)

// retireGrace is how long a replaced Checker outlives its policy's
// timeout: sessions that picked up the old pair just before a reload may
// still be inside Check.
const retireGrace = 5 * time.Second

// daemon is the running milter: the parts that live for the whole process
// (logger, cache, metrics registry, milter server, listeners) and the
// parts swapped on SIGHUP (config, checker).
type daemon struct {
	env            environment
	configPath     string
	listenOverride string

	logger   *slog.Logger
	level    *slog.LevelVar
	registry *prometheus.Registry
	// cache outlives reloads so that a reload does not cost a cold start.
	cache  *rbl.Cache
	server *milter.Server
	ready  atomic.Bool
	// engineMetrics, monitor and budget hear from every Checker, across
	// reloads: the budget's counts survive SIGHUP.
	engineMetrics *rbl.Metrics
	monitor       *rbl.Monitor
	budget        *rbl.Budget

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge

	// started is the config the process started with: the settings that
	// only take effect at start are compared against it on reload.
	started *daemonConfig

	mu      sync.Mutex
	current *daemonConfig
	checker *rbl.Checker
	retired map[*rbl.Checker]*time.Timer
}

// runDaemon starts the daemon and serves until SIGTERM/SIGINT.
func runDaemon(ctx context.Context, configPath, listenOverride string, env environment) int {
	cfg, err := loadConfig(configPath, env.defaultConfig, env.parseEnv(listenOverride))
	if err != nil {
		printConfigError(env.stderr, configPath, env.defaultConfig, err)
		return exitError
	}
	d := &daemon{
		env:            env,
		configPath:     configPath,
		listenOverride: listenOverride,
		level:          new(slog.LevelVar),
		started:        cfg,
		current:        cfg,
		retired:        map[*rbl.Checker]*time.Timer{},
	}
	d.logger = newLogger(env.stderr, cfg.Log, d.level)
	if env.adoptLogger != nil {
		env.adoptLogger(d.logger)
	}
	if err := d.serve(ctx); err != nil {
		d.logger.Error("rblmilter stopped", "error", err)
		return exitError
	}
	return exitOK
}

func (d *daemon) serve(ctx context.Context) error {
	cfg := d.current
	d.registry = prometheus.NewRegistry()
	if err := d.registerMetrics(); err != nil {
		return err
	}
	if cfg.Cache != nil {
		cache, err := rbl.NewCache(*cfg.Cache, nil)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		d.cache = cache
	}
	if err := d.startEngineObservers(); err != nil {
		return err
	}
	checker, err := d.newChecker(cfg)
	if err != nil {
		return err
	}
	d.checker = checker
	defer d.closeCheckers()
	d.configureHealth(cfg, checker)
	stopHealth := d.runHealth(ctx)
	defer stopHealth()

	d.server, err = milter.NewServer(cfg.Policy, milter.Engine(checker), milter.ServerOptions{
		Logger:     d.logger,
		Registerer: d.registry,
		NoQuickACK: d.env.noQuickACK,
	})
	if err != nil {
		return err
	}
	ln, err := milter.Listen(cfg.Listen, cfg.Socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	var metricsServer *http.Server
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		metricsServer = &http.Server{
			Handler:           metricsHandler(d.registry, d.ready.Load, d.listHealth, cfg.Metrics.Pprof),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go metricsServer.Serve(mln)
		defer metricsServer.Close()
		d.logger.Info("metrics listening", "addr", mln.Addr().String(), "pprof", cfg.Metrics.Pprof)
	}
	// Binding may need root (ports below 1024, socket ownership); nothing
	// after this point does.
	if err := d.dropPrivileges(cfg); err != nil {
		return err
	}

	signals, stopSignals := d.env.signals()
	defer stopSignals()
	served := make(chan error, 1)
	go func() { served <- d.server.Serve(ln) }()
	d.ready.Store(true)
	d.reloadOK.Set(1)
	d.reloadTime.SetToCurrentTime()
	d.logger.Info("listening", "addr", ln.Addr().String(), "listen", cfg.ListenText,
		"config", cfg.Source, "lists", len(cfg.Engine.Lists), "resolvers", strings.Join(cfg.Resolvers, ","),
		"version", version)

	for {
		select {
		case err := <-served:
			// Accepting failed for good; the sessions already open
			// still get their verdicts.
			d.ready.Store(false)
			d.drain(ctx)
			return fmt.Errorf("milter server: %w", err)
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.shutdown(ctx, sig.String(), served)
			return nil
		case <-ctx.Done():
			d.shutdown(ctx, "context cancelled", served)
			return nil
		}
	}
}

// shutdown drains: the server stops accepting, sessions in flight get
// drain_timeout to finish, the rest are closed.
func (d *daemon) shutdown(ctx context.Context, reason string, served <-chan error) {
	d.ready.Store(false)
	d.logger.Info("shutting down", "signal", reason, "drain_timeout", d.drainTimeout().String())
	d.drain(ctx)
	if err := <-served; err != nil {
		d.logger.Debug("milter server returned", "error", err)
	}
	d.logger.Info("stopped")
}

func (d *daemon) drainTimeout() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current.DrainTimeout
}

// drain stops the server, giving sessions in flight drain_timeout.
func (d *daemon) drain(ctx context.Context) {
	// The drain gets its own deadline even when ctx is what was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.drainTimeout())
	defer cancel()
	if err := d.server.Shutdown(ctx); err != nil {
		d.logger.Warn("drain timeout reached; closed the remaining sessions", "error", err)
	}
}

// reload re-reads the config and swaps it in. A broken config is logged
// and the running one stays.
func (d *daemon) reload() {
	d.logger.Info("reloading config", "config", d.configSourceName())
	cfg, err := loadConfig(d.configPath, d.env.defaultConfig, d.env.parseEnv(d.listenOverride))
	if err != nil {
		d.reloadFailed(err)
		return
	}
	checker, err := d.newChecker(cfg)
	if err != nil {
		d.reloadFailed(err)
		return
	}
	if err := d.server.Reload(cfg.Policy, milter.Engine(checker)); err != nil {
		checker.Close()
		d.reloadFailed(err)
		return
	}
	// The level first: the warnings below are then logged at the new one.
	d.level.Set(cfg.Log.Level)
	d.warnRestartOnly(cfg)

	d.mu.Lock()
	old, oldTimeout := d.checker, d.current.Policy.Timeout
	d.checker, d.current = checker, cfg
	d.retired[old] = time.AfterFunc(oldTimeout+retireGrace, func() { d.closeRetired(old) })
	d.mu.Unlock()
	d.configureHealth(cfg, checker)

	d.reloadOK.Set(1)
	d.reloadTime.SetToCurrentTime()
	d.logger.Info("config reloaded", "config", cfg.Source, "lists", len(cfg.Engine.Lists))
}

func (d *daemon) reloadFailed(err error) {
	d.reloadOK.Set(0)
	var ce *configError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			d.logger.Error("config reload failed", "config", d.configSourceName(), "problem", p)
		}
	} else {
		d.logger.Error("config reload failed", "config", d.configSourceName(), "error", err)
	}
	d.logger.Error("keeping the previous config")
}

func (d *daemon) configSourceName() string {
	if d.configPath != "" {
		return d.configPath
	}
	return d.env.defaultConfig
}

// warnRestartOnly tells the admin which changed settings a reload cannot
// apply: sockets are bound (and privileges dropped) once, the cache is
// kept on purpose, and the log handler is built once.
func (d *daemon) warnRestartOnly(cfg *daemonConfig) {
	s := d.started
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"listen", cfg.Listen != s.Listen},
		{"socket_mode/socket_owner/socket_group", cfg.Socket != s.Socket},
		{"user/group", cfg.User != s.User || cfg.Group != s.Group},
		{"cache", !reflect.DeepEqual(cfg.Cache, s.Cache)},
		{"log.format", cfg.Log.JSON != s.Log.JSON},
		{"metrics", cfg.Metrics != s.Metrics},
	} {
		if c.changed {
			d.logger.Warn("config change needs a restart to take effect", "key", c.key)
		}
	}
}

// newChecker builds the engine for cfg with the shared cache.
func (d *daemon) newChecker(cfg *daemonConfig) (*rbl.Checker, error) {
	resolver, err := rbl.NewResolver(rbl.ResolverConfig{Servers: cfg.Resolvers})
	if err != nil {
		return nil, fmt.Errorf("resolvers: %w", err)
	}
	return rbl.NewChecker(cfg.Engine, rbl.Options{
		Resolver: resolver,
		Cache:    d.cache,
		Logger:   d.logger,
		Observer: d.engineMetrics,
		Health:   d.monitor,
		Budget:   d.budget,
	})
}

func (d *daemon) closeRetired(c *rbl.Checker) {
	d.mu.Lock()
	_, ok := d.retired[c]
	delete(d.retired, c)
	d.mu.Unlock()
	if ok {
		c.Close()
	}
}

// closeCheckers closes the current checker and every retired one still
// waiting for its grace period.
func (d *daemon) closeCheckers() {
	d.mu.Lock()
	var all []*rbl.Checker
	for c, t := range d.retired {
		t.Stop()
		all = append(all, c)
	}
	clear(d.retired)
	if d.checker != nil {
		all = append(all, d.checker)
		d.checker = nil
	}
	d.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

func (d *daemon) registerMetrics() error {
	d.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rblmilter_config_last_reload_successful",
		Help: "Whether the last configuration load (at start or SIGHUP) succeeded.",
	})
	d.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rblmilter_config_last_reload_success_timestamp_seconds",
		Help: "Time of the last successful configuration load.",
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "rblmilter_build_info",
		Help:        "Always 1; the version label says which rblmilter is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		d.reloadOK, d.reloadTime, buildInfo,
	} {
		if err := d.registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}
