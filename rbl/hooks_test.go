package rbl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// recorder is an Observer and a Health that writes down what it is told.
type recorder struct {
	mu       sync.Mutex
	queries  []string
	lookups  []rbl.Result
	verdicts []rbl.Verdict
	observed []string
	disabled map[string]bool
}

func (r *recorder) QuerySent(list string, qtype uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, list+" "+dns.TypeToString[qtype])
}

func (r *recorder) LookupDone(res rbl.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, res)
}

func (r *recorder) VerdictDone(v rbl.Verdict) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verdicts = append(r.verdicts, v)
}

func (r *recorder) Enabled(l *rbl.List) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.disabled[l.Zone]
}

func (r *recorder) Observe(l *rbl.List, res rbl.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, fmt.Sprintf("%s %s %v", l, res.Outcome, res.Codes))
}

func (r *recorder) snapshot() (queries []string, lookups []string, verdicts int, observed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lookups {
		lookups = append(lookups, fmt.Sprintf("%s %s cached=%v", l.List, l.Outcome, l.Cached))
	}
	slices.Sort(lookups)
	return slices.Clone(r.queries), lookups, len(r.verdicts), slices.Clone(r.observed)
}

func TestKeyNeverAppears(t *testing.T) {
	const key = "s3cr3tdqskey"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &recorder{}
	keyed := rbl.List{Zone: "zen.dq.test", Key: key, Weight: 1, Timeout: 200 * time.Millisecond, Filters: filters(t, "127.0.0.[2..11]")}
	named := keyed
	named.Name = "Spamhaus DQS"
	named.Filters = filters(t, "127.0.0.0/24*2")
	e := newEnv(t, rbl.Config{Lists: []rbl.List{keyed, named}, FetchTXT: true}, rbl.Options{Logger: logger, Observer: rec, Health: rec})
	zone := key + ".zen.dq.test"
	clients := map[string][]rbltest.Option{
		"192.0.2.1": {rbltest.A("127.0.0.2"), rbltest.TXT("listed; query " + key + " was used")},
		"192.0.2.2": {rbltest.Rcode(dns.RcodeServerFailure)},
		"192.0.2.3": {rbltest.Silent()},
		"192.0.2.4": {rbltest.A("127.255.255.254")},
		"192.0.2.5": {rbltest.A("10.0.0.1")},
		"192.0.2.6": {rbltest.Hold(make(chan struct{}))},
		"192.0.2.7": {rbltest.Mismatch()},
	}
	var out strings.Builder
	for addr, opts := range clients {
		e.srv.Set(rbl.QueryName(ip(addr), zone), opts...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if addr == "192.0.2.6" {
			cancel()
			ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		}
		v := e.c.Check(ctx, ip(addr))
		cancel()
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%v\n%+v\n%#v\n%s\n", v, v, v, j)
		for _, r := range v.Results {
			fmt.Fprintf(&out, "%v %+v %s %#v %s\n", r, r, r.List, *r.List, r.Err)
		}
		if e.srv.Queries(rbl.QueryName(ip(addr), zone)) == 0 {
			t.Errorf("%s: the keyed name was never asked", addr)
		}
	}
	e.c.Close()
	_, lookups, _, observed := rec.snapshot()
	fmt.Fprintf(&out, "%v %v %v %+v\n", rec.queries, lookups, observed, e.c.Config())
	if _, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{{Zone: "bad..zone", Key: key}}}, rbl.Options{Resolver: resolver(t, e.srv.Addr())}); err != nil {
		fmt.Fprintln(&out, err)
	} else {
		t.Error("bad zone accepted")
	}
	if _, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{{Zone: "zone.test", Key: key + ".x"}}}, rbl.Options{Resolver: resolver(t, e.srv.Addr())}); err != nil {
		fmt.Fprintln(&out, err)
	} else {
		t.Error("bad key accepted")
	}
	out.WriteString(logs.String())
	if strings.Contains(out.String(), key) {
		t.Errorf("the key appears in output:\n%s", out.String())
	}
	for _, want := range []string{"Spamhaus DQS", "zen.dq.test", "timeout", "SERVFAIL", "refused", "bogus", "[key]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q (the test did not exercise it):\n%s", want, out.String())
		}
	}
}

func TestObserverAndHealth(t *testing.T) {
	rec := &recorder{disabled: map[string]bool{"off.test": true}}
	cfg := rbl.Config{Lists: []rbl.List{site(t, "zen.test=127.0.0.2*2"), site(t, "zen.test=127.0.0.4"), site(t, "off.test"), site(t, "wl.test*-1")}, AllowlistThreshold: -1}
	e := newEnv(t, cfg, rbl.Options{Observer: rec, Health: rec})
	client := ip("192.0.2.33")
	e.srv.Set(rbl.QueryName(client, "zen.test"), rbltest.A("127.255.255.254"))
	for range 3 {
		v := e.c.Check(context.Background(), client)
		if !slices.Equal(outcomes(v), []rbl.Outcome{rbl.Refused, rbl.Refused, rbl.Disabled, rbl.NotListed}) || v.Decision != rbl.Accept {
			t.Fatalf("%s %v", v.Decision, outcomes(v))
		}
	}
	queries, lookups, verdicts, observed := rec.snapshot()
	if want := []string{"zen.test A", "wl.test A"}; !slices.Equal(sorted(queries), sorted(want)) {
		t.Errorf("queries %q, want %q", queries, want)
	}
	if e.srv.Queries(rbl.QueryName(client, "off.test")) != 0 {
		t.Error("a disabled list was asked")
	}
	want := []string{
		"off.test disabled cached=false", "off.test disabled cached=false", "off.test disabled cached=false",
		"wl.test not_listed cached=false", "wl.test not_listed cached=true", "wl.test not_listed cached=true",
		"zen.test refused cached=false", "zen.test refused cached=false",
		"zen.test refused cached=true", "zen.test refused cached=true", "zen.test refused cached=true", "zen.test refused cached=true",
	}
	if !slices.Equal(lookups, want) {
		t.Errorf("lookups\n got %q\nwant %q", lookups, want)
	}
	if verdicts != 3 {
		t.Errorf("%d verdicts, want 3", verdicts)
	}
	// Health hears each fresh answer once per entry, not per check.
	wantObserved := []string{"zen.test refused [127.255.255.254]", "zen.test refused [127.255.255.254]", "wl.test not_listed []"}
	if !slices.Equal(sorted(observed), sorted(wantObserved)) {
		t.Errorf("observed %q, want %q", observed, wantObserved)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestCloseWaitsForBackgroundLookups(t *testing.T) {
	rec := &recorder{}
	release := make(chan struct{})
	cfg := rbl.Config{Lists: []rbl.List{site(t, "fast.test"), site(t, "slow1.test"), site(t, "slow2.test")}}
	e := newEnv(t, cfg, rbl.Options{Observer: rec})
	var clients []netip.Addr
	for i := range 20 {
		client := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		clients = append(clients, client)
		e.srv.Set(rbl.QueryName(client, "fast.test"), rbltest.A("127.0.0.2"))
		e.srv.Set(rbl.QueryName(client, "slow1.test"), rbltest.Hold(release))
		e.srv.Set(rbl.QueryName(client, "slow2.test"), rbltest.Hold(release))
	}
	for _, client := range clients {
		if v := e.c.Check(context.Background(), client); v.Decision != rbl.Reject || !v.Early {
			t.Fatalf("%s early %v %v", v.Decision, v.Early, outcomes(v))
		}
	}
	e.srv.WaitInFlight(t, 40)
	if n := checkerGoroutines(); n == 0 {
		t.Fatal("no background lookups to wait for: the test proves nothing")
	}
	// The held answers never come: Close must cancel them, and wait.
	e.c.Close()
	// Close returns once every lookup called wg.Done; the goroutines
	// may take a moment more to unwind. A leaked one never does.
	testutil.WaitFor(t, "the checker's goroutines to end", func() bool { return checkerGoroutines() == 0 })
	_, lookups, _, _ := rec.snapshot()
	if len(lookups) != 60 {
		t.Errorf("%d lookups reported, want 60 (every pending lookup ended before Close returned)", len(lookups))
	}
	close(release)
}

// checkerGoroutines counts goroutines running Checker code.
func checkerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "rbl.(*Checker)") && !strings.Contains(g, "checkerGoroutines") {
			count++
		}
	}
	return count
}
