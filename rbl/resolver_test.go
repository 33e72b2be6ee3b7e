package rbl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func newTestResolver(t *testing.T, cfg ResolverConfig) *DNSResolver {
	t.Helper()
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func TestResolverAnswers(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.Set("2.0.0.127.bl.test", rbltest.A("127.0.0.2", "127.0.0.4"), rbltest.TXT("listed"))
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}})
	ctx := context.Background()

	m, err := r.Query(ctx, "2.0.0.127.bl.test", dns.TypeA)
	if err != nil || !slices.Equal(aRecords(m), []string{"127.0.0.2", "127.0.0.4"}) {
		t.Fatalf("A: %v %v", m, err)
	}
	m, err = r.Query(ctx, "1.0.0.127.bl.test", dns.TypeA)
	if err != nil || m.Rcode != dns.RcodeNameError {
		t.Fatalf("NXDOMAIN: %v %v", m, err)
	}
	m, err = r.Query(ctx, "2.0.0.127.BL.test.", dns.TypeTXT)
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("TXT: %v %v", m, err)
	}
}

func TestResolverUsesEDNS0(t *testing.T) {
	// 30 uncompressed A records make an 850-byte answer: readable only
	// with a buffer larger than the 512 bytes of plain DNS.
	srv := rbltest.NewServer(t)
	var addrs []string
	for i := range 30 {
		addrs = append(addrs, fmt.Sprintf("127.0.1.%d", i))
	}
	srv.Set("big.bl.test", rbltest.A(addrs...))
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}})
	m, err := r.Query(context.Background(), "big.bl.test", dns.TypeA)
	if err != nil || len(m.Answer) != 30 {
		t.Fatalf("got %v, %v", m, err)
	}
	if srv.TCPQueries("big.bl.test") != 0 {
		t.Error("fell back to TCP")
	}
}

func TestResolverRetriesTruncatedOverTCP(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.Set("2.0.0.127.bl.test", rbltest.A("127.0.0.2"), rbltest.Truncate())
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}})
	m, err := r.Query(context.Background(), "2.0.0.127.bl.test", dns.TypeA)
	if err != nil || !slices.Equal(aRecords(m), []string{"127.0.0.2"}) || m.Truncated {
		t.Fatalf("got %v, %v", m, err)
	}
	if n, tcp := srv.Queries("2.0.0.127.bl.test"), srv.TCPQueries("2.0.0.127.bl.test"); n != 2 || tcp != 1 {
		t.Errorf("%d queries, %d over TCP; want 2, 1", n, tcp)
	}
}

func TestResolverTriesNextServer(t *testing.T) {
	const name = "2.0.0.127.bl.test"
	tests := []struct {
		name string
		bad  rbltest.Option
	}{
		{"SERVFAIL", rbltest.Rcode(dns.RcodeServerFailure)},
		{"REFUSED", rbltest.Rcode(dns.RcodeRefused)},
		{"silence", rbltest.Silent()},
		{"mismatched question", rbltest.Mismatch()},
	}
	for _, tt := range tests {
		bad, good := rbltest.NewServer(t), rbltest.NewServer(t)
		bad.Set(name, rbltest.A("127.0.0.9"), tt.bad)
		good.Set(name, rbltest.A("127.0.0.2"))
		r := newTestResolver(t, ResolverConfig{Servers: []string{bad.Addr(), good.Addr()}, AttemptTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := r.Query(ctx, name, dns.TypeA)
		cancel()
		if err != nil || !slices.Equal(aRecords(m), []string{"127.0.0.2"}) {
			t.Errorf("%s: got %v, %v", tt.name, m, err)
		}
		if bad.Queries(name) != 1 || good.Queries(name) != 1 {
			t.Errorf("%s: queries bad %d good %d", tt.name, bad.Queries(name), good.Queries(name))
		}
	}
}

func TestResolverSplitsDeadlineAmongServers(t *testing.T) {
	// With a 1 s budget and two servers, a silent first server gets half,
	// not all of it: the second still answers.
	const name = "2.0.0.127.bl.test"
	bad, good := rbltest.NewServer(t), rbltest.NewServer(t)
	bad.Set(name, rbltest.Silent())
	good.Set(name, rbltest.A("127.0.0.2"))
	r := newTestResolver(t, ResolverConfig{Servers: []string{bad.Addr(), good.Addr()}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r.Query(ctx, name, dns.TypeA); err != nil {
		t.Fatal(err)
	}
}

func TestResolverErrors(t *testing.T) {
	const name = "2.0.0.127.secretkey.bl.test"
	srv := rbltest.NewServer(t)
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}})
	tests := []struct {
		name    string
		opt     rbltest.Option
		timeout bool
		msg     string
	}{
		{"servfail", rbltest.Rcode(dns.RcodeServerFailure), false, "DNS server " + srv.Addr() + ": answered SERVFAIL"},
		{"refused", rbltest.Rcode(dns.RcodeRefused), false, "DNS server " + srv.Addr() + ": answered REFUSED"},
		{"formerr", rbltest.Rcode(dns.RcodeFormatError), false, "DNS server " + srv.Addr() + ": answered FORMERR"},
		{"silent", rbltest.Silent(), true, "DNS server " + srv.Addr() + ": timeout"},
		{"mismatch", rbltest.Mismatch(), false, "DNS server " + srv.Addr() + ": answer does not match the question"},
	}
	for _, tt := range tests {
		srv.Set(name, tt.opt)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := r.Query(ctx, name, dns.TypeA)
		cancel()
		var qe *QueryError
		if m != nil || !errors.As(err, &qe) || errors.Is(err, ErrTimeout) != tt.timeout || err.Error() != tt.msg {
			t.Errorf("%s: got %v, %v (timeout %v)", tt.name, m, err, errors.Is(err, ErrTimeout))
		}
		if err != nil && strings.Contains(err.Error(), "secretkey") {
			t.Errorf("%s: error names the query: %v", tt.name, err)
		}
	}
}

func TestResolverHonoursCancellation(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.Set("held.bl.test", rbltest.Hold(make(chan struct{})))
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}, AttemptTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	start := time.Now()
	go func() {
		_, err := r.Query(ctx, "held.bl.test", dns.TypeA)
		done <- err
	}()
	srv.WaitInFlight(t, 1)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancellation took %s", d)
	}
}

func TestNewResolver(t *testing.T) {
	r := newTestResolver(t, ResolverConfig{Servers: []string{"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53", "[fe80::1]"}})
	want := []string{"127.0.0.1:53", "127.0.0.1:5353", "[::1]:53", "[::1]:53", "[fe80::1]:53"}
	if got := r.servers; !slices.Equal(got, want) {
		t.Errorf("servers = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		cfg ResolverConfig
		msg string
	}{
		{ResolverConfig{}, "resolver: no DNS servers configured"},
		{ResolverConfig{Servers: []string{"dns.google"}}, `resolver "dns.google": not an IP address or IP:port (e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)`},
		{ResolverConfig{Servers: []string{"127.0.0.1:x"}}, `resolver "127.0.0.1:x": not an IP address or IP:port (e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)`},
		{ResolverConfig{Servers: []string{"127.0.0.1"}, UDPSize: 100}, "resolver: UDP size 100 is below the DNS minimum 512"},
	} {
		if _, err := NewResolver(tt.cfg); err == nil || err.Error() != tt.msg {
			t.Errorf("NewResolver(%+v) error\n got %v\nwant %s", tt.cfg, err, tt.msg)
		}
	}
}

func TestServersFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("# comment\nsearch example.org\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0 trust-ad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ServersFromResolvConf(path)
	if err != nil || !slices.Equal(got, []string{"127.0.0.53:53", "[::1]:53"}) {
		t.Errorf("got %q, %v", got, err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ServersFromResolvConf(empty); err == nil || err.Error() != "resolver: "+empty+" has no nameserver line" {
		t.Errorf("empty: %v", err)
	}
	if _, err := ServersFromResolvConf(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing: %v", err)
	}
}

func TestResolverRetransmitsALostQuery(t *testing.T) {
	// The first copy of every query is lost; the second is answered.
	const name = "2.0.0.127.bl.test"
	srv := rbltest.NewServer(t)
	srv.Set(name, rbltest.A("127.0.0.2"), rbltest.Alternate(rbltest.Silent()))
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}, Retransmit: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.Query(ctx, name, dns.TypeA)
	if err != nil || !slices.Equal(aRecords(m), []string{"127.0.0.2"}) {
		t.Fatalf("got %v, %v; want the answer to the copy sent again", m, err)
	}
	// Under load a third copy may go out before the second's answer.
	if n := srv.Queries(name); n < 2 {
		t.Errorf("%d queries, want the lost one sent again", n)
	}
}

func TestResolverWithoutRetransmitWaitsOutTheLoss(t *testing.T) {
	const name = "2.0.0.127.bl.test"
	srv := rbltest.NewServer(t)
	srv.Set(name, rbltest.A("127.0.0.2"), rbltest.Alternate(rbltest.Silent()))
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}, Retransmit: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.Query(ctx, name, dns.TypeA)
	if !errors.Is(err, ErrTimeout) || srv.Queries(name) != 1 {
		t.Errorf("err %v after %d queries; want a timeout after one", err, srv.Queries(name))
	}
}
