package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// loadClient is the i-th client address of the load: odd ones are listed.
func loadClient(i int) string {
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(i%200 + 1)}).String()
}

func loadListed(i int) bool { return (i%200+1)%2 == 1 }

// sessionResult is one load session as the MTA saw it.
type sessionResult struct {
	start, end time.Time
	// negotiated is false when the milter refused or dropped the
	// connection before the option negotiation was answered.
	negotiated bool
	act        *gomilter.Action
	err        error
	listed     bool
}

// runSession is one MTA session: connect, negotiate, CONNECT, verdict.
func runSession(sock, ip string, listed bool) sessionResult {
	r := sessionResult{start: time.Now(), listed: listed}
	defer func() { r.end = time.Now() }()
	s, err := mta("unix", sock)
	if err != nil {
		r.err = err
		r.end = time.Now()
		return r
	}
	defer s.Close()
	r.negotiated = true
	r.act, r.err = s.Conn("client.example", gomilter.FamilyInet, 25000, ip)
	r.end = time.Now()
	return r
}

// rightVerdict reports whether a finished session got what the policy
// says: 554 for listed clients, ACCEPT for the others.
func (r sessionResult) rightVerdict() bool {
	if r.err != nil || r.act == nil {
		return false
	}
	if r.listed {
		return isReject(r.act)
	}
	return r.act.Code == gomilter.ActAccept
}

// loadGen runs workers that start sessions back to back until stop.
type loadGen struct {
	mu      sync.Mutex
	results []sessionResult
	stop    chan struct{}
	wg      sync.WaitGroup
	n       atomic.Int64
}

func startLoad(sock string, workers int, listed func(i int) bool) *loadGen {
	g := &loadGen{stop: make(chan struct{})}
	for w := range workers {
		g.wg.Go(func() {
			for i := w; ; i += workers {
				select {
				case <-g.stop:
					return
				default:
				}
				r := runSession(sock, loadClient(i), listed(i))
				g.n.Add(1)
				g.mu.Lock()
				g.results = append(g.results, r)
				g.mu.Unlock()
			}
		})
	}
	return g
}

// waitSessions blocks until n sessions have finished.
func (g *loadGen) waitSessions(t *testing.T, n int64) {
	t.Helper()
	err := testutil.Poll(waitTimeout, time.Millisecond, func() error {
		if done := g.n.Load(); done < n {
			return fmt.Errorf("only %d of %d load sessions in %v", done, n, waitTimeout)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (g *loadGen) finish() []sessionResult {
	close(g.stop)
	g.wg.Wait()
	return g.results
}

// SIGTERM while sessions pour in and some wait on DNS: every session the
// daemon took (negotiated) gets its verdict, none is refused before the
// signal, new ones are refused after it, the held ones finish when DNS
// answers, and the process exits 0.
func TestBinarySIGTERMUnderLoad(t *testing.T) {
	d := newDNSBL(t)
	for i := range 200 {
		if loadListed(i) {
			d.list(loadClient(i))
		}
	}
	release := make(chan struct{})
	var held []string
	for i := range 10 {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}).String()
		held = append(held, ip)
		d.list(ip, rbltest.Hold(release))
	}
	cfg, sock := unixConfig(t, readableTempDir(t), d, "timeout = \"30s\"\ndrain_timeout = \"30s\"\nskip = []")
	b := startBinary(t, cfg)

	heldResults := make(chan sessionResult, len(held))
	for _, ip := range held {
		go func() { heldResults <- runSession(sock, ip, true) }()
	}
	for _, ip := range held {
		d.WaitQueries(t, d.queryName(ip), 1)
	}
	load := startLoad(sock, 8, loadListed)
	load.waitSessions(t, 200)

	signalled := time.Now()
	b.signal(t, syscall.SIGTERM)
	b.log.wait(t, `msg="shutting down"`, "signal=terminated")
	waitRefused(t, "unix", sock)
	results := load.finish()
	if r := runSession(sock, loadClient(1), true); r.negotiated {
		t.Errorf("a session was negotiated after the listener closed: %+v", r)
	}

	close(release)
	for range held {
		if r := <-heldResults; !r.rightVerdict() {
			t.Errorf("held session: %+v %v; want its 554", r.act, r.err)
		}
	}
	if code := b.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, b.log)
	}
	b.log.wait(t, "msg=stopped")

	var ok, refusedAfter int
	for _, r := range results {
		switch {
		case r.rightVerdict():
			ok++
		case !r.negotiated && r.end.After(signalled):
			refusedAfter++ // not taken: the listener was closing
		default:
			t.Errorf("session %v..%v (SIGTERM at %v): negotiated %v, %+v, %v",
				r.start.Format(time.StampMicro), r.end.Format(time.StampMicro), signalled.Format(time.StampMicro), r.negotiated, r.act, r.err)
		}
	}
	t.Logf("%d sessions with their verdict, %d refused after SIGTERM, %d held sessions drained", ok, refusedAfter, len(held))
}

// SIGHUP again and again while sessions pour in: not one session fails,
// each gets the verdict of the old or the new config, and once a reload
// is logged new sessions follow it.
func TestBinarySIGHUPUnderLoad(t *testing.T) {
	d := newDNSBL(t)
	for i := range 200 {
		if loadListed(i) {
			d.list(loadClient(i))
		}
	}
	dir := readableTempDir(t)
	cfg := filepath.Join(dir, "rblmilter.toml")
	sock := filepath.Join(dir, "milter.sock")
	rejecting := "timeout = \"30s\"\nskip = []"
	logging := rejecting + "\naction = \"log\""
	writeConfig(t, cfg, d, "unix:"+sock, rejecting)
	b := startBinary(t, cfg)

	// Listed clients are rejected under one config and accepted under
	// the other: both are right while a reload is under way.
	load := startLoad(sock, 8, loadListed)
	const reloads = 6
	for n := 1; n <= reloads; n++ {
		load.waitSessions(t, int64(50*n))
		extra, wantReject := logging, false
		if n%2 == 0 {
			extra, wantReject = rejecting, true
		}
		writeConfig(t, cfg, d, "unix:"+sock, extra)
		b.signal(t, syscall.SIGHUP)
		b.log.waitN(t, n, `msg="config reloaded"`)
		// After the reload line, new sessions see the new config.
		for i := 0; i < 6; i += 2 {
			if r := runSession(sock, loadClient(i), wantReject); !r.rightVerdict() {
				t.Errorf("reload %d (reject %v): %s got %+v, %v", n, wantReject, loadClient(i), r.act, r.err)
			}
		}
	}
	results := load.finish()
	var rejected, accepted int
	for _, r := range results {
		switch {
		case r.err != nil || r.act == nil:
			t.Errorf("session failed during reloads: %v", r.err)
		case !r.listed && r.act.Code != gomilter.ActAccept:
			t.Errorf("clean client got %+v", r.act)
		case !r.listed:
		case isReject(r.act):
			rejected++
		case r.act.Code == gomilter.ActAccept:
			accepted++
		default:
			t.Errorf("listed client got %+v", r.act)
		}
	}
	if rejected == 0 || accepted == 0 {
		t.Errorf("listed clients: %d rejected, %d accepted: the load did not run under both configs", rejected, accepted)
	}
	b.stop(t)
	if n := b.log.count("level=ERROR"); n != 0 {
		t.Errorf("%d error lines:\n%s", n, b.log)
	}
	t.Logf("%d sessions over %d reloads (listed clients: %d rejected, %d accepted), none failed", len(results), reloads, rejected, accepted)
}
