package rbltest_test

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func ask(t *testing.T, srv *rbltest.Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, srv.Addr())
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return r
}

func TestServer(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.Set("2.0.0.127.BL.test.", rbltest.A("127.0.0.2", "127.0.0.4"), rbltest.TXT("listed"), rbltest.TTL(42))
	r := ask(t, srv, "udp", "2.0.0.127.bl.test", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || r.Answer[0].Header().Ttl != 42 {
		t.Errorf("A: %v", r)
	}
	r = ask(t, srv, "tcp", "2.0.0.127.bl.test", dns.TypeTXT)
	if txt, ok := r.Answer[0].(*dns.TXT); !ok || txt.Txt[0] != "listed" {
		t.Errorf("TXT: %v", r)
	}
	r = ask(t, srv, "udp", "2.0.0.127.bl.test", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("NODATA: %v", r)
	}
	if srv.Queries("2.0.0.127.bl.test") != 3 || srv.TCPQueries("2.0.0.127.bl.test.") != 1 {
		t.Errorf("counts %d %d", srv.Queries("2.0.0.127.bl.test"), srv.TCPQueries("2.0.0.127.bl.test"))
	}

	r = ask(t, srv, "udp", "unknown.bl.test", dns.TypeA)
	soa, ok := r.Ns[0].(*dns.SOA)
	if r.Rcode != dns.RcodeNameError || !ok || soa.Hdr.Ttl != 3600 || soa.Minttl != 300 {
		t.Errorf("default NXDOMAIN: %v", r)
	}
	srv.SetDefault(rbltest.Rcode(dns.RcodeRefused))
	if r := ask(t, srv, "udp", "unknown.bl.test", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("SetDefault: %v", r)
	}
	srv.Set("tc.bl.test", rbltest.A("127.0.0.2"), rbltest.Truncate())
	if r := ask(t, srv, "udp", "tc.bl.test", dns.TypeA); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("truncated UDP: %v", r)
	}
	if r := ask(t, srv, "tcp", "tc.bl.test", dns.TypeA); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("full TCP: %v", r)
	}
	srv.Delete("tc.bl.test")
	if r := ask(t, srv, "udp", "tc.bl.test", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("deleted name: %v", r)
	}

	release := make(chan struct{})
	srv.Set("held.bl.test", rbltest.A("127.0.0.2"), rbltest.Hold(release))
	done := make(chan *dns.Msg)
	for range 2 {
		go func() { done <- ask(t, srv, "udp", "held.bl.test", dns.TypeA) }()
	}
	srv.WaitInFlight(t, 2)
	srv.WaitQueries(t, "held.bl.test", 2)
	close(release)
	for range 2 {
		if r := <-done; len(r.Answer) != 1 {
			t.Errorf("held: %v", r)
		}
	}
	if srv.MaxInFlight() < 2 || srv.InFlight() != 0 {
		t.Errorf("in flight: max %d now %d", srv.MaxInFlight(), srv.InFlight())
	}
	if srv.TotalQueries() != 10 {
		t.Errorf("total %d", srv.TotalQueries())
	}
}

func TestServerTrees(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.SetTree("2.0.192.bl.test", rbltest.A("127.0.0.2"))
	srv.SetTree("0.2.0.192.bl.test", rbltest.A("127.0.0.3"))
	srv.Set("9.2.0.192.bl.test")
	codes := func(name string) string {
		r := ask(t, srv, "udp", name, dns.TypeA)
		if len(r.Answer) == 0 {
			return dns.RcodeToString[r.Rcode]
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	for name, want := range map[string]string{
		"7.2.0.192.bl.test":   "127.0.0.2", // in the /24
		"2.0.192.bl.test":     "127.0.0.2", // the tree's own name
		"7.0.2.0.192.bl.test": "127.0.0.3", // the deeper tree wins
		"9.2.0.192.bl.test":   "NXDOMAIN",  // an exact name wins
		"7.3.0.192.bl.test":   "NXDOMAIN",  // outside
		"x2.0.192.bl.test":    "NXDOMAIN",  // not on a label boundary
	} {
		if got := codes(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	srv.Delete("2.0.192.bl.test")
	if got := codes("7.2.0.192.bl.test"); got != "NXDOMAIN" {
		t.Errorf("deleted tree: %s", got)
	}
}
