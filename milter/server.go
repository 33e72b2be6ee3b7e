package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("milter: server closed")

// ServerOptions are the Server's injected dependencies.
type ServerOptions struct {
	Logger *slog.Logger
	// Registerer receives the milter metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// IdleTimeout bounds how long a session may wait for the MTA's next
	// packet; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// NoQuickACK stops the TCP_QUICKACK re-arm before socket reads (see
	// docs/operations.md for the Sendmail stall it prevents). It exists
	// for the test that shows that stall coming back without the re-arm
	// (integration/sendmail_latency_test.go); never set it in production.
	NoQuickACK bool
}

// Server serves milter sessions. It accepts the connections itself
// (go-milter's Server.Close neither drains nor is safe to call
// concurrently with Serve) and has go-milter serve each with the
// configuration generation current when it was accepted.
type Server struct {
	logger  *slog.Logger
	idle    time.Duration
	metrics *serverMetrics
	// quickACK re-arms TCP_QUICKACK before every socket read (see
	// socketReader); ServerOptions.NoQuickACK turns it off.
	quickACK bool

	// lifetime bounds lookups started by sessions: go-milter callbacks
	// carry no context, so the Server supplies one, cancelled by Shutdown
	// once the drain deadline has passed.
	lifetime context.Context
	cancel   context.CancelFunc

	gen atomic.Pointer[generation]

	mu           sync.Mutex
	listeners    map[net.Listener]struct{}
	conns        map[*trackedConn]struct{}
	shuttingDown bool
	// idleCh is closed when conns becomes empty during a shutdown.
	idleCh chan struct{}

	// shutdownDone is closed when the first Shutdown has finished, and
	// shutdownErr is its result, which later calls return.
	shutdownDone chan struct{}
	shutdownErr  error
}

// generation is one configuration: policy, checker and the go-milter
// server negotiating the stages that policy needs.
type generation struct {
	policy  Policy
	checker Checker
	// milter is go-milter's configuration of this generation. Every
	// Serve runs a copy: go-milter's Server keeps per-Serve state without
	// locks, and a copy of its zero state is a fresh server.
	milter gomilter.Server
	// plan is what the policy and the lists need at each SMTP stage.
	plan plan
	// levels are the checker's, for the results header.
	levels levels
	// badHostName warns once that the MTA's {j} cannot be an authserv-id.
	badHostName sync.Once
	// decisions holds this generation's rblmilter_decisions_total series
	// by result, resolved once: finding a labelled series hashes its
	// labels on every call, which cost more than a cache-hit lookup.
	decisions [numResults]prometheus.Counter
}

// NewServer returns a server deciding with policy and checker. It returns
// an error naming the bad field when policy is invalid.
func NewServer(policy Policy, checker Checker, opts ServerOptions) (*Server, error) {
	if checker == nil {
		return nil, errors.New("milter: NewServer: nil checker")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	m, err := newServerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		logger:       opts.Logger,
		idle:         opts.IdleTimeout,
		metrics:      m,
		quickACK:     !opts.NoQuickACK,
		listeners:    map[net.Listener]struct{}{},
		conns:        map[*trackedConn]struct{}{},
		shutdownDone: make(chan struct{}),
	}
	// Root of the per-session lookup contexts; see the lifetime field.
	s.lifetime, s.cancel = context.WithCancel(context.Background())
	if err := s.Reload(policy, checker); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// ValidatePolicy reports every problem of p, each naming the field, joined
// with errors.Join; nil when p is valid.
func ValidatePolicy(p Policy) error {
	var errs []error
	if p.Action > ActionLog {
		errs = append(errs, fmt.Errorf("action: unknown action %d", p.Action))
	}
	if p.Stage > StageRcpt {
		errs = append(errs, fmt.Errorf("stage: unknown stage %d", p.Stage))
	}
	if err := validateReply("reply", withDefault(p.Reply, DefaultReply), '5'); err != nil {
		errs = append(errs, err)
	}
	if err := validateReply("tempfail_reply", withDefault(p.TempfailReply, DefaultTempfailReply), '4'); err != nil {
		errs = append(errs, err)
	}
	if p.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative", p.Timeout))
	}
	switch h := p.Header; {
	case h != "" && !validHeaderName(h):
		errs = append(errs, fmt.Errorf("header: %q is not a valid header field name", h))
	case standardHeader(h):
		errs = append(errs, fmt.Errorf("header: %q is a header field the message itself uses; rblmilter deletes incoming copies of its header, so it needs a name of its own (like %q)", h, DefaultHeader))
	}
	if p.AuthservID != "" {
		if err := checkAuthservID(p.AuthservID); err != nil {
			errs = append(errs, fmt.Errorf("authserv_id: %q %w", p.AuthservID, err))
		}
	}
	for i, r := range p.ListReplies {
		if err := ValidateListReply(r); err != nil {
			errs = append(errs, fmt.Errorf("list entry %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether h may name a header field (RFC 5322
// 3.6.8: printable ASCII except the colon).
func validHeaderName(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] >= 0x7f || h[i] == ':' {
			return false
		}
	}
	return true
}

// standardHeader reports whether name is a header field of the message
// format, MIME, tracing or authentication (RFC 5322, 2045, 8601, 6376,
// 8617): deleting incoming copies of one would damage the message.
func standardHeader(name string) bool {
	for _, prefix := range []string{"Content-", "Resent-", "ARC-"} {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			return true
		}
	}
	for _, h := range []string{
		"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date",
		"Message-ID", "In-Reply-To", "References", "Comments", "Keywords",
		"Received", "Return-Path", "MIME-Version", "DKIM-Signature",
		authResultsHeader,
	} {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

func withDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// applyDefaults fills in the policy fields left empty; ValidatePolicy has
// already accepted p.
func applyDefaults(p Policy) Policy {
	p.Reply = withDefault(p.Reply, DefaultReply)
	p.TempfailReply = withDefault(p.TempfailReply, DefaultTempfailReply)
	p.Header = withDefault(p.Header, DefaultHeader)
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	return p
}

// Reload swaps policy and checker atomically; sessions already in flight
// keep the pair they started with.
func (s *Server) Reload(policy Policy, checker Checker) error {
	if err := ValidatePolicy(policy); err != nil {
		return err
	}
	if checker == nil {
		return errors.New("milter: Reload: nil checker")
	}
	policy = applyDefaults(policy)
	tag, reject := checker.Levels()
	g := &generation{
		policy:    policy,
		checker:   checker,
		plan:      newPlan(&policy, checker.Checks(), tag),
		levels:    levels{tag: tag, reject: reject},
		decisions: s.metrics.decisionsFor(policy),
	}
	g.milter = gomilter.Server{
		NewMilter: func() gomilter.Milter { return &session{srv: s, gen: g} },
		Actions:   g.actions(),
		Protocol:  g.plan.protocol(),
		SymList:   g.plan.macros(),
	}
	s.gen.Store(g)
	return nil
}

// actions is what the milter may ask of the MTA: headers added and
// forged copies deleted, when the results header may be written.
func (g *generation) actions() gomilter.OptAction {
	a := gomilter.OptSetSymList
	if g.plan.headers {
		a |= gomilter.OptAddHeader | gomilter.OptChangeHeader
	}
	return a
}

// Serve accepts sessions on ln until Shutdown. The current generation's
// go-milter server accepts through a genListener, so that a connection
// goes from accept to its session goroutine without another goroutine in
// between; after a Reload, the first connection accepted for the retired
// generation ends its go-milter server and starts the current one's.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var carried *trackedConn
	for {
		g := s.gen.Load()
		gl := &genListener{Listener: ln, srv: s, gen: g, first: carried}
		gm := g.milter
		err := gm.Serve(gl)
		carried = gl.retiredWith
		switch {
		case s.closing():
			if carried != nil {
				carried.Close()
			}
			return ErrServerClosed
		case errors.Is(err, errRetired):
			continue
		}
		return err
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shuttingDown
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) track(c net.Conn) (*trackedConn, bool) {
	tc := newTrackedConn(c, s, s.idle)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return nil, false
	}
	s.conns[tc] = struct{}{}
	s.metrics.inFlight.Inc()
	return tc, true
}

func (s *Server) forget(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[tc]; !ok {
		return
	}
	delete(s.conns, tc)
	s.metrics.inFlight.Dec()
	if len(s.conns) == 0 && s.idleCh != nil {
		close(s.idleCh)
		s.idleCh = nil
	}
}

// Shutdown stops accepting, closes the connections that are finished from
// the milter's side (ACCEPT sent), waits for the others until ctx is done,
// then closes those left. The MTA applies its default action to a session
// whose milter connection is closed, so a drain deadline never rejects mail
// when the MTA is configured to fail open.
//
// Shutdown is idempotent: the first call drains, and any other call, at
// the same time or later, waits for it and returns the same result, or its
// own ctx's error if that ends first. The first call's ctx alone sets the
// drain deadline. (go-smtp's Shutdown also guards itself with a done
// channel, but answers a second call with ErrServerClosed at once; here a
// caller learns how the drain ended.)
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		select {
		case <-s.shutdownDone:
			return s.shutdownErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.shuttingDown = true
	for ln := range s.listeners {
		ln.Close()
	}
	var idle chan struct{}
	var finished []*trackedConn
	if len(s.conns) > 0 {
		s.idleCh = make(chan struct{})
		idle = s.idleCh
		for tc := range s.conns {
			if tc.final.Load() {
				finished = append(finished, tc)
			}
		}
	}
	s.mu.Unlock()
	for _, tc := range finished {
		tc.Close()
	}

	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
			s.mu.Lock()
			left := make([]*trackedConn, 0, len(s.conns))
			for tc := range s.conns {
				left = append(left, tc)
			}
			s.mu.Unlock()
			s.logger.Warn("drain deadline passed; closing sessions", "sessions", len(left))
			for _, tc := range left {
				tc.Close()
			}
		}
	}
	s.cancel()
	s.shutdownErr = err
	close(s.shutdownDone)
	return err
}

// clientAddr finds the client's address. go-milter parses the connect
// packet's address with net.ParseIP, which fails on Sendmail's
// "IPv6:2001:db8::2" form, so the {client_addr} macro and the bracketed
// host name Sendmail sends for unresolved clients are fallbacks.
func clientAddr(addr net.IP, macros map[string]string, host string) (netip.Addr, bool) {
	if a, ok := netip.AddrFromSlice(addr); ok {
		return a.Unmap(), true
	}
	for _, s := range []string{macros["{client_addr}"], trimBrackets(host)} {
		if a, err := netip.ParseAddr(trimIPv6Tag(s)); err == nil && s != "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func trimBrackets(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return ""
}

func trimIPv6Tag(s string) string {
	if len(s) > 5 && (s[:5] == "IPv6:" || s[:5] == "ipv6:" || s[:5] == "IPV6:") {
		return s[5:]
	}
	return s
}

// serverMetrics are the milter-side metrics; the engine's own are
// registered by package rbl.
type serverMetrics struct {
	inFlight  prometheus.Gauge
	decisions *prometheus.CounterVec
}

// decisionsFor resolves the decision series of policy's action and stage,
// one for every result a session counts.
func (m *serverMetrics) decisionsFor(p Policy) [numResults]prometheus.Counter {
	var out [numResults]prometheus.Counter
	for r := range out {
		out[r] = m.decisions.WithLabelValues(Result(r).String(), p.Action.String(), p.Stage.String())
	}
	return out
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rblmilter_milter_sessions_in_flight",
			Help: "Milter connections currently open.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_decisions_total",
			Help: "Connection decisions by result (accept, reject, tempfail, allowlisted, tag, skip, allow, block, unknown_client), configured action and stage.",
		}, []string{"result", "action", "stage"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.inFlight, m.decisions} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("milter metrics: %w", err)
			}
		}
	}
	return m, nil
}
