package milter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
)

// fakeChecker answers canned verdicts; it stands in for the engine so
// these tests pin the milter's own logic. End-to-end tests with the real
// engine live in e2e_test.go.
type fakeChecker struct {
	mu     sync.Mutex
	listed map[netip.Addr]rbl.Verdict
	// authListed, when it has the address, is the verdict once the
	// client has authenticated.
	authListed map[netip.Addr]rbl.Verdict
	asked      []netip.Addr
	release    chan struct{} // when non-nil, Check waits for it
	// tag and reject are the levels it reports; reject 0 means 1.
	tag, reject int
}

var zenList = &rbl.List{Zone: "zen.example", Name: "zen.example", Weight: 1}

func listedVerdict(ip string, txt string) rbl.Verdict {
	return rbl.Verdict{
		IP: netip.MustParseAddr(ip), Decision: rbl.Reject, Score: 3,
		Results: []rbl.Result{{
			List: zenList, Outcome: rbl.Listed, Weight: 3, TXT: txt,
			Codes: []netip.Addr{netip.MustParseAddr("127.0.0.2")},
		}},
	}
}

func (f *fakeChecker) Check(ctx context.Context, ip netip.Addr) rbl.Verdict {
	f.mu.Lock()
	f.asked = append(f.asked, ip)
	v, ok := f.listed[ip]
	rel := f.release
	f.mu.Unlock()
	if rel != nil {
		select {
		case <-rel:
		case <-ctx.Done():
		}
	}
	if ok {
		return v
	}
	return rbl.Verdict{IP: ip, Decision: rbl.Accept}
}

func (f *fakeChecker) Start(ip netip.Addr) Lookups { return &fakeLookups{f: f, ip: ip} }

func (f *fakeChecker) Checks() rbl.CheckSet { return rbl.Checks(rbl.CheckIP) }

func (f *fakeChecker) Levels() (tag, reject int) { return f.tag, max(f.reject, 1) }

// fakeLookups is a client's session with a fakeChecker: its verdict is
// the canned one for the address, settled.
type fakeLookups struct {
	f             *fakeChecker
	ip            netip.Addr
	authenticated bool
}

func (l *fakeLookups) Ask(rbl.Check, string) error { return nil }

func (l *fakeLookups) Authenticated(yes bool) { l.authenticated = yes }

func (l *fakeLookups) Verdict(ctx context.Context, _ rbl.CheckSet) rbl.Verdict {
	v := l.f.Check(ctx, l.ip)
	l.f.mu.Lock()
	if av, ok := l.f.authListed[l.ip]; ok && l.authenticated {
		v = av
	}
	l.f.mu.Unlock()
	v.Settled = true
	return v
}

func (l *fakeLookups) Peek(open rbl.CheckSet) rbl.Verdict {
	return l.Verdict(context.Background(), open)
}

func (l *fakeLookups) Settled(rbl.CheckSet) bool { return true }

// TXT is the canned verdict's text: the fake's results come with it.
func (l *fakeLookups) TXT(_ context.Context, r *rbl.Result) string { return r.TXT }

func (f *fakeChecker) askedFor() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.asked...)
}

type testServer struct {
	srv  *Server
	addr string
	logs *testutil.Buffer
	reg  *prometheus.Registry
}

func startServer(t *testing.T, p Policy, c Checker) *testServer {
	t.Helper()
	return startServerWith(t, p, c, ServerOptions{})
}

// startServerWith is startServer with opts; the logger and the registry
// are always the test's.
func startServerWith(t *testing.T, p Policy, c Checker, opts ServerOptions) *testServer {
	t.Helper()
	ts := newTestServer(t, p, c, opts)
	ln := listenLoopback(t)
	serveUntilCleanup(t, ts.srv, ln)
	ts.addr = ln.Addr().String()
	return ts
}

// newTestServer makes a Server that is not serving yet, logging at debug
// level to the test's buffer and registering to the test's registry.
func newTestServer(t *testing.T, p Policy, c Checker, opts ServerOptions) *testServer {
	t.Helper()
	logs := &testutil.Buffer{}
	reg := prometheus.NewRegistry()
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Registerer = reg
	srv, err := NewServer(p, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{srv: srv, logs: logs, reg: reg}
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveUntilCleanup serves ln until the test ends, then shuts srv down
// and checks that Serve returned ErrServerClosed.
func serveUntilCleanup(t *testing.T, srv *Server, ln net.Listener) {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

// mta opens a milter session as an MTA would. go-milter's default client
// asks for actions a v2 server refuses, so the masks are 0.
func mta(t *testing.T, addr string) *gomilter.ClientSession {
	t.Helper()
	cl := gomilter.NewClientWithOptions("tcp", addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	})
	s, err := cl.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, s *gomilter.ClientSession, family gomilter.ProtoFamily, addr string, macros ...string) *gomilter.Action {
	t.Helper()
	if len(macros) > 0 {
		if err := s.Macros(gomilter.CodeConn, macros...); err != nil {
			t.Fatal(err)
		}
	}
	act, err := s.Conn("client.example", family, 25000, addr)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func basePolicy() Policy {
	return Policy{Timeout: 2 * time.Second, ExemptRecipients: []string{"postmaster", "abuse@example.org"}, SkipAuthenticated: true}
}

func TestConnectStageRejectsListedAndAcceptsClean(t *testing.T) {
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{
		netip.MustParseAddr("192.0.2.1"): listedVerdict("192.0.2.1", "see https://example/?ip=192.0.2.1 100%"),
	}}
	ts := startServer(t, basePolicy(), fc)

	act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "192.0.2.1")
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 554 {
		t.Fatalf("listed client: got %+v, want a 554 reply", act)
	}
	want := "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.example; see https://example/?ip=192.0.2.1 100%%"
	if act.SMTPText != want {
		t.Errorf("reply text\n got %q\nwant %q", act.SMTPText, want)
	}

	act = connect(t, mta(t, ts.addr), gomilter.FamilyInet, "198.51.100.7")
	if act.Code != gomilter.ActAccept {
		t.Fatalf("clean client: got %+v, want ACCEPT", act)
	}
	if got := promtest.ToFloat64(ts.srv.metrics.decisions.WithLabelValues("reject", "reject", "connect")); got != 1 {
		t.Errorf("reject decisions = %v, want 1", got)
	}
	if !strings.Contains(ts.logs.String(), `msg=decision ip=192.0.2.1 decision=reject action=reject stage=connect at=connect score=3 lists="zen.example=127.0.0.2"`) {
		t.Errorf("decision log line missing:\n%s", ts.logs.String())
	}
}

func TestClientAddressForms(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name   string
		family gomilter.ProtoFamily
		addr   string
		macros []string
		host   string
		want   netip.Addr
	}{
		{"ipv4", gomilter.FamilyInet, "192.0.2.9", nil, "", netip.MustParseAddr("192.0.2.9")},
		{"ipv6 plain (Postfix)", gomilter.FamilyInet6, "2001:db8::2", nil, "", v6},
		{"ipv4-mapped", gomilter.FamilyInet6, "::ffff:192.0.2.9", nil, "", netip.MustParseAddr("192.0.2.9")},
		{"Sendmail IPv6: form via {client_addr}", gomilter.FamilyInet6, "IPv6:2001:db8::2", []string{"{client_addr}", "IPv6:2001:db8::2"}, "", v6},
		{"Sendmail IPv6: form via bracketed host", gomilter.FamilyInet6, "IPv6:2001:db8::2", nil, "[IPv6:2001:db8::2]", v6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeChecker{}
			ts := startServer(t, basePolicy(), fc)
			s := mta(t, ts.addr)
			if len(tt.macros) > 0 {
				if err := s.Macros(gomilter.CodeConn, tt.macros...); err != nil {
					t.Fatal(err)
				}
			}
			host := tt.host
			if host == "" {
				host = "client.example"
			}
			act, err := s.Conn(host, tt.family, 25, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if act.Code != gomilter.ActAccept {
				t.Fatalf("got %+v, want ACCEPT", act)
			}
			if got := fc.askedFor(); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("checker asked for %v, want [%v]", got, tt.want)
			}
		})
	}
}

func TestLocalAndUnknownClientsAreAcceptedWithoutLookup(t *testing.T) {
	fc := &fakeChecker{}
	ts := startServer(t, basePolicy(), fc)
	for _, fam := range []gomilter.ProtoFamily{gomilter.FamilyUnix, gomilter.FamilyUnknown} {
		if act := connect(t, mta(t, ts.addr), fam, "/var/run/x"); act.Code != gomilter.ActAccept {
			t.Errorf("family %c: got %+v, want ACCEPT", fam, act)
		}
	}
	// A TCP client whose address cannot be read is accepted too: refusing
	// would lose mail over a parsing problem.
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "not-an-ip"); act.Code != gomilter.ActAccept {
		t.Errorf("garbage address: got %+v, want ACCEPT", act)
	}
	if got := fc.askedFor(); len(got) != 0 {
		t.Errorf("checker asked for %v, want nothing", got)
	}
	if !strings.Contains(ts.logs.String(), "level=WARN msg=\"client address not usable; accepting\"") {
		t.Errorf("want a warning for the unreadable TCP address:\n%s", ts.logs.String())
	}
}

func TestSkipAllowBlockNetworks(t *testing.T) {
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{
		netip.MustParseAddr("192.0.2.1"): listedVerdict("192.0.2.1", ""),
	}}
	p := basePolicy()
	p.Skip = DefaultSkip()
	p.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}
	p.Block = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	ts := startServer(t, p, fc)

	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "10.1.2.3"); act.Code != gomilter.ActAccept {
		t.Errorf("skipped: got %+v", act)
	}
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Errorf("allowed (though listed): got %+v", act)
	}
	act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "203.0.113.5")
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 554 || !strings.Contains(act.SMTPText, "blocked using local block list") {
		t.Errorf("blocked: got %+v", act)
	}
	if got := fc.askedFor(); len(got) != 0 {
		t.Errorf("checker asked for %v, want nothing", got)
	}
}

func TestActions(t *testing.T) {
	listedIP := "192.0.2.1"
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): listedVerdict(listedIP, "")}}

	t.Run("tempfail", func(t *testing.T) {
		p := basePolicy()
		p.Action = ActionTempfail
		ts := startServer(t, p, fc)
		act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP)
		want := "4.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.example"
		if act.Code != gomilter.ActReplyCode || act.SMTPCode != 454 || act.SMTPText != want {
			t.Fatalf("got %+v, want the reject reply soft-bounced: 454 %q", act, want)
		}
	})
	t.Run("log", func(t *testing.T) {
		p := basePolicy()
		p.Action = ActionLog
		ts := startServer(t, p, fc)
		if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP); act.Code != gomilter.ActAccept {
			t.Fatalf("got %+v, want ACCEPT", act)
		}
		if !strings.Contains(ts.logs.String(), "decision=reject action=log") {
			t.Errorf("dry run must still log the decision:\n%s", ts.logs.String())
		}
	})
	t.Run("tag", func(t *testing.T) {
		p := basePolicy()
		p.Action = ActionTag
		ts := startServer(t, p, fc)
		s := mta(t, ts.addr)
		if act := connect(t, s, gomilter.FamilyInet, listedIP); act.Code != gomilter.ActContinue {
			t.Fatalf("connect: got %+v, want CONTINUE", act)
		}
		mods, act, err := s.End()
		if err != nil {
			t.Fatal(err)
		}
		if act.Code != gomilter.ActContinue {
			t.Errorf("end of message: got %+v, want CONTINUE (accept)", act)
		}
		if len(mods) != 1 || mods[0].Code != gomilter.ActAddHeader || mods[0].HeaderName != "X-RBL" ||
			mods[0].HeaderValue != "score=3 reject=1 listed=zen.example(127.0.0.2)" {
			t.Fatalf("modifications = %+v, want one X-RBL header", mods)
		}
		// A clean client is let go at connect.
		if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "198.51.100.1"); act.Code != gomilter.ActAccept {
			t.Errorf("clean: got %+v, want ACCEPT", act)
		}
	})
}

func TestTempfailVerdict(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.50")
	failing := &rbl.List{Zone: "strict.example", Name: "strict.example", OnError: rbl.FailTempfail}
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{ip: {
		IP: ip, Decision: rbl.Tempfail,
		Results: []rbl.Result{{List: failing, Outcome: rbl.Timeout}},
	}}}
	ts := startServer(t, basePolicy(), fc)
	act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, ip.String())
	want := "4.7.1 Service temporarily unavailable; Client host [192.0.2.50] could not be checked against strict.example"
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 451 || act.SMTPText != want {
		t.Fatalf("got %+v, want 451 %q", act, want)
	}
}

func TestRcptStage(t *testing.T) {
	listedIP := "192.0.2.1"
	fc := &fakeChecker{
		listed: map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): listedVerdict(listedIP, "")},
		// zen counts for unauthenticated sessions only, as the engine
		// has it by default: once the client has authenticated, clean.
		authListed: map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): {IP: netip.MustParseAddr(listedIP), Decision: rbl.Accept}},
	}
	p := basePolicy()
	p.Stage = StageRcpt
	ts := startServer(t, p, fc)

	s := mta(t, ts.addr)
	if act := connect(t, s, gomilter.FamilyInet, listedIP); act.Code != gomilter.ActContinue {
		t.Fatalf("connect: got %+v, want CONTINUE", act)
	}
	if act, err := s.Mail("<sender@example.net>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	for _, rcpt := range []string{"<Postmaster@example.com>", "<abuse@example.org>"} {
		if act, err := s.Rcpt(rcpt, nil); err != nil || act.Code != gomilter.ActContinue {
			t.Fatalf("exempt %s: %+v %v", rcpt, act, err)
		}
	}
	act, err := s.Rcpt("<abuse@example.com>", nil) // only abuse@example.org is exempt
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != gomilter.ActReplyCode || act.SMTPCode != 554 {
		t.Fatalf("RCPT: got %+v, want 554", act)
	}

	// Authenticated senders pass: the engine hears of the login at MAIL.
	s = mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, listedIP)
	if err := s.Macros(gomilter.CodeMail, "{auth_authen}", "alice"); err != nil {
		t.Fatal(err)
	}
	s.Mail("<alice@example.net>", nil)
	if act, err := s.Rcpt("<someone@example.com>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("authenticated RCPT: %+v %v", act, err)
	}

	// Clean clients continue.
	s = mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, "198.51.100.3")
	s.Mail("<x@example.net>", nil)
	if act, err := s.Rcpt("<someone@example.com>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("clean RCPT: %+v %v", act, err)
	}
}

func TestReloadSwapsPolicyForNewSessions(t *testing.T) {
	listedIP := "192.0.2.1"
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): listedVerdict(listedIP, "")}}
	ts := startServer(t, basePolicy(), fc)
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP); act.SMTPCode != 554 {
		t.Fatalf("before reload: %+v", act)
	}
	p := basePolicy()
	p.Action = ActionLog
	if err := ts.srv.Reload(p, fc); err != nil {
		t.Fatal(err)
	}
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP); act.Code != gomilter.ActAccept {
		t.Fatalf("after reload to action=log: %+v", act)
	}
	bad := basePolicy()
	bad.Reply = "250 ok"
	if err := ts.srv.Reload(bad, fc); err == nil {
		t.Fatal("Reload accepted a 2xx reply")
	}
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP); act.Code != gomilter.ActAccept {
		t.Fatalf("a failed reload must keep the old policy: %+v", act)
	}
}

// TestReloadKeepsOpenSessionsAndServesNewOnes: a session open across
// reloads keeps the configuration it was accepted with, however many
// reloads come while it runs; the connection that finds a generation
// retired and every one after it get the current configuration.
func TestReloadKeepsOpenSessionsAndServesNewOnes(t *testing.T) {
	listedIP := "192.0.2.1"
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): listedVerdict(listedIP, "")}}
	ts := startServer(t, basePolicy(), fc)
	open := mta(t, ts.addr) // accepted under action = reject
	logPolicy := basePolicy()
	logPolicy.Action = ActionLog
	for range 3 {
		if err := ts.srv.Reload(logPolicy, fc); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, listedIP); act.Code != gomilter.ActAccept {
			t.Fatalf("new session %d after the reloads: %+v, want ACCEPT (action = log)", i, act)
		}
	}
	if act := connect(t, open, gomilter.FamilyInet, listedIP); act.SMTPCode != 554 {
		t.Fatalf("session opened before the reloads: %+v, want the 554 of action = reject", act)
	}
}

// flakyListener fails its first Accept with a timeout, as a listener out
// of file descriptors fails with EMFILE (which net reports as temporary).
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "accept: too many open files" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, timeoutError{}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorIsRetried(t *testing.T) {
	ts := newTestServer(t, basePolicy(), &fakeChecker{}, ServerOptions{})
	inner := listenLoopback(t)
	serveUntilCleanup(t, ts.srv, &flakyListener{Listener: inner})
	if act := connect(t, mta(t, inner.Addr().String()), gomilter.FamilyInet, "192.0.2.9"); act.Code != gomilter.ActAccept {
		t.Errorf("after a failed accept: %+v, want ACCEPT", act)
	}
	if !strings.Contains(ts.logs.String(), "accept failed; retrying") {
		t.Errorf("the failed accept was not logged:\n%s", ts.logs)
	}
}

func TestShutdownDrainsInFlightSessions(t *testing.T) {
	listedIP := "192.0.2.1"
	fc := &fakeChecker{
		listed:  map[netip.Addr]rbl.Verdict{netip.MustParseAddr(listedIP): listedVerdict(listedIP, "")},
		release: make(chan struct{}),
	}
	ts := startServer(t, basePolicy(), fc)

	// An accepted session sits idle until the MTA quits: Shutdown must not
	// wait for it.
	idle := mta(t, ts.addr)
	close(fc.release)
	if act := connect(t, idle, gomilter.FamilyInet, "198.51.100.9"); act.Code != gomilter.ActAccept {
		t.Fatal(act)
	}
	fc.mu.Lock()
	fc.release = make(chan struct{})
	rel := fc.release
	fc.mu.Unlock()

	inflight := mta(t, ts.addr)
	verdict := make(chan *gomilter.Action, 1)
	go func() {
		act, err := inflight.Conn("c", gomilter.FamilyInet, 1, listedIP)
		if err != nil {
			t.Error(err)
		}
		verdict <- act
	}()
	testutil.WaitFor(t, "both lookups to start", func() bool { return len(fc.askedFor()) == 2 })

	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(t.Context()) }()
	// New sessions are refused once the listener is closed.
	testutil.WaitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a session was in flight", err)
	default:
	}
	close(rel)
	if act := <-verdict; act == nil || act.SMTPCode != 554 {
		t.Fatalf("in-flight session got %+v, want its 554 verdict", act)
	}
	inflight.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownDeadlineClosesStuckSessions(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	p := basePolicy()
	p.Stage = StageRcpt
	ts := startServer(t, p, fc)
	s := mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, "192.0.2.77") // CONTINUE: the MTA will come back
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	close(fc.release)
	if _, err := s.Rcpt("<x@example.com>", nil); err == nil {
		t.Fatal("session still open after the drain deadline")
	}
}

// A second Shutdown, during the first or after it, must neither start a
// drain of its own nor replace the first's wait: it returns the first
// call's result. The first call's drain ends by cancellation, the others'
// contexts only by a later deadline, so the cancellation they must return
// can only be the first call's.
func TestShutdownTwiceAndConcurrently(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	defer close(fc.release)
	p := basePolicy()
	p.Stage = StageRcpt
	ts := startServer(t, p, fc)
	s := mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, "192.0.2.78") // CONTINUE: the MTA will come back

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { first <- ts.srv.Shutdown(ctx) }()
	testutil.WaitFor(t, "the shutdown to begin", ts.srv.closing)
	later, cancelLater := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelLater()
	const others = 4
	results := make(chan error, others)
	for range others {
		go func() { results <- ts.srv.Shutdown(later) }()
	}
	select {
	case err := <-first:
		t.Fatalf("first Shutdown returned %v with a session in flight", err)
	case err := <-results:
		t.Fatalf("a concurrent Shutdown returned %v with a session in flight", err)
	default:
	}
	cancel() // the drain deadline of the first call
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first Shutdown = %v, want its context's error", err)
	}
	for range others {
		if err := <-results; !errors.Is(err, context.Canceled) {
			t.Errorf("concurrent Shutdown = %v, want the first call's result", err)
		}
	}
	if err := ts.srv.Shutdown(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown after the first finished = %v, want the first call's result", err)
	}
	if _, err := s.Rcpt("<x@example.com>", nil); err == nil {
		t.Error("session still open after the first Shutdown's deadline")
	}
}

// A later Shutdown whose own context ends first stops waiting without
// touching the drain.
func TestShutdownSecondCallsOwnDeadline(t *testing.T) {
	p := basePolicy()
	p.Stage = StageRcpt
	ts := startServer(t, p, &fakeChecker{})
	s := mta(t, ts.addr)
	connect(t, s, gomilter.FamilyInet, "192.0.2.79")

	first := make(chan error, 1)
	go func() { first <- ts.srv.Shutdown(t.Context()) }()
	testutil.WaitFor(t, "the shutdown to begin", ts.srv.closing)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Shutdown = %v, want its own deadline", err)
	}
	// The drain goes on: the session can still finish, and then the first
	// call returns.
	if act, err := s.Rcpt("<x@example.com>", nil); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("session after the second Shutdown gave up: %+v, %v", act, err)
	}
	s.Close()
	if err := <-first; err != nil {
		t.Fatalf("first Shutdown = %v", err)
	}
}
