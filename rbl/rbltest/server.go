// Package rbltest provides a fake DNSBL server for tests: a miekg/dns server
// on 127.0.0.1 (UDP and TCP on one port) whose answers are set per query
// name, with delays, holds, TTLs, error codes, truncation and silence, and
// the faults of broken or hostile servers (garbage, wrong IDs, oversized
// UDP answers, failing TCP, answers that alternate good and bad). It never
// talks to anything but loopback.
//
//	srv := rbltest.NewServer(t)
//	srv.Set(rbl.QueryName(ip, "bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("listed"))
//	resolver, _ := rbl.NewResolver(rbl.ResolverConfig{Servers: []string{srv.Addr()}})
package rbltest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a fake DNS server. Names that were not Set answer NXDOMAIN with
// an SOA record (see SetDefault). It is safe for concurrent use and shuts
// down when the test ends.
type Server struct {
	t        testing.TB
	addr     string
	udp, tcp *dns.Server
	done     chan struct{}

	mu    sync.Mutex
	rules map[string]*rule
	// trees answer a name and every name below it (SetTree).
	trees       map[string]*rule
	def         rule
	queries     map[string]int
	tcpQueries  map[string]int
	total       int
	inFlight    int
	maxInFlight int
	// changed is closed (and replaced) whenever counts change, so waiters
	// need not poll.
	changed chan struct{}
}

type rule struct {
	a        []netip.Addr
	txt      []string
	ttl      uint32
	soaTTL   uint32
	soaMin   uint32
	noSOA    bool
	rcode    int
	delay    time.Duration
	hold     <-chan struct{}
	silent   bool
	truncate bool
	mismatch bool
	// Faults a broken or hostile server shows; see the options.
	garbage   []byte
	wrongID   bool
	oversize  bool
	tcpRcode  int
	tcpHangUp bool
	alternate []Option
}

func defaultRule() rule {
	return rule{ttl: 300, soaTTL: 3600, soaMin: 300, rcode: -1, tcpRcode: -1}
}

// Option shapes the answer for a name.
type Option func(*rule)

// A makes the name exist with these A records ("127.0.0.2").
func A(addrs ...string) Option {
	return func(r *rule) {
		for _, s := range addrs {
			r.a = append(r.a, netip.MustParseAddr(s))
		}
	}
}

// TXT adds a TXT record, answered to TXT queries.
func TXT(text string) Option { return func(r *rule) { r.txt = append(r.txt, text) } }

// TTL sets the TTL of the A and TXT records, in seconds (default 300).
func TTL(seconds uint32) Option { return func(r *rule) { r.ttl = seconds } }

// NegativeTTL sets the SOA record's TTL and MINIMUM field sent with
// NXDOMAIN and NODATA answers (default 3600 and 300).
func NegativeTTL(soaTTL, minimum uint32) Option {
	return func(r *rule) { r.soaTTL, r.soaMin = soaTTL, minimum }
}

// NoSOA leaves the SOA record out of negative answers.
func NoSOA() Option { return func(r *rule) { r.noSOA = true } }

// Rcode answers with this response code and no records (e.g.
// dns.RcodeServerFailure, dns.RcodeRefused).
func Rcode(rcode int) Option { return func(r *rule) { r.rcode = rcode } }

// Delay waits d before answering.
func Delay(d time.Duration) Option { return func(r *rule) { r.delay = d } }

// Hold answers only once release is closed (or the server stops): tests
// control timing without sleeping.
func Hold(release <-chan struct{}) Option { return func(r *rule) { r.hold = release } }

// Silent never answers.
func Silent() Option { return func(r *rule) { r.silent = true } }

// Truncate answers UDP queries with the TC bit and no records, so clients
// must retry over TCP, where the full answer is given.
func Truncate() Option { return func(r *rule) { r.truncate = true } }

// Mismatch answers with a question that differs from the one asked.
func Mismatch() Option { return func(r *rule) { r.mismatch = true } }

// Garbage answers with these raw bytes instead of a DNS message.
func Garbage(b []byte) Option { return func(r *rule) { r.garbage = b } }

// WrongID answers with a message ID other than the query's, as a spoofer
// guessing IDs would.
func WrongID() Option { return func(r *rule) { r.wrongID = true } }

// Oversize sends UDP answers whole even when they are larger than the
// client's buffer (EDNS0 size, else 512 bytes). Without it, such answers
// are truncated with the TC bit set, as a real server does.
func Oversize() Option { return func(r *rule) { r.oversize = true } }

// TCPRcode answers queries over TCP with this response code and no
// records; UDP answers are unchanged.
func TCPRcode(rcode int) Option { return func(r *rule) { r.tcpRcode = rcode } }

// TCPHangUp closes TCP connections without answering; UDP answers are
// unchanged.
func TCPHangUp() Option { return func(r *rule) { r.tcpHangUp = true } }

// Alternate applies bad on top of the other options to every other query
// for the name: the 1st, 3rd, 5th... query gets the bad answer, the 2nd,
// 4th... the normal one.
func Alternate(bad ...Option) Option { return func(r *rule) { r.alternate = bad } }

// NewServer starts a server on 127.0.0.1, UDP and TCP on the same port,
// stopped by t.Cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		done:       make(chan struct{}),
		rules:      make(map[string]*rule),
		trees:      make(map[string]*rule),
		def:        defaultRule(),
		queries:    make(map[string]int),
		tcpQueries: make(map[string]int),
		changed:    make(chan struct{}),
	}
	pc, ln := listenPair(t)
	s.addr = pc.LocalAddr().String()
	s.activate(pc, ln)
	t.Cleanup(s.close)
	return s
}

// activate serves on pc and ln.
func (s *Server) activate(pc net.PacketConn, ln net.Listener) {
	handler := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: handler}
	s.tcp = &dns.Server{Listener: ln, Handler: handler}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
}

// Stop closes the server's sockets: from now on queries to Addr are
// refused (ICMP port unreachable for UDP, RST for TCP), as when the DNS
// server is down, until Start. Not safe to call concurrently with Start.
func (s *Server) Stop() {
	s.shutdown()
}

// Start serves again on the same address after Stop, failing the test if
// the port was taken in between.
func (s *Server) Start() {
	s.t.Helper()
	pc, err := net.ListenPacket("udp", s.addr)
	if err != nil {
		s.t.Fatalf("rbltest: restarting: %v", err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		pc.Close()
		s.t.Fatalf("rbltest: restarting: %v", err)
	}
	s.activate(pc, ln)
}

// listenPair opens UDP and TCP sockets on the same loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("rbltest: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		lastErr = err
		pc.Close()
	}
	t.Fatalf("rbltest: no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

func (s *Server) close() {
	close(s.done)
	s.shutdown()
}

func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.udp.ShutdownContext(ctx)
	_ = s.tcp.ShutdownContext(ctx)
}

// CloseTCP stops the TCP side: TCP connections to Addr are refused from
// now on (UDP is still served), like a server behind a firewall that only
// lets UDP through.
func (s *Server) CloseTCP() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.tcp.ShutdownContext(ctx)
}

// Addr is the server's "127.0.0.1:port", for rbl.ResolverConfig.Servers.
func (s *Server) Addr() string { return s.addr }

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Set defines the answers for name (with or without the trailing dot, any
// case), replacing earlier ones. Without A records the name does not exist
// (NXDOMAIN) unless Rcode says otherwise.
func (s *Server) Set(name string, opts ...Option) {
	r := ruleOf(opts)
	s.mu.Lock()
	s.rules[canonical(name)] = &r
	s.mu.Unlock()
}

// ruleOf is the default rule shaped by opts.
func ruleOf(opts []Option) rule {
	r := defaultRule()
	for _, o := range opts {
		o(&r)
	}
	return r
}

// SetTree defines the answers for name and every name below it, as a
// listing of a whole network does: SetTree("2.0.192.bl.test", ...) lists
// 192.0.2.0/24 in bl.test. Names Set exactly win; among trees, the
// deepest one holding the name.
func (s *Server) SetTree(name string, opts ...Option) {
	r := ruleOf(opts)
	s.mu.Lock()
	s.trees[canonical(name)] = &r
	s.mu.Unlock()
}

// Delete forgets name, exact or tree: it answers like any unknown name
// again.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	delete(s.rules, canonical(name))
	delete(s.trees, canonical(name))
	s.mu.Unlock()
}

// lookup returns the rule for name; s.mu must be held.
func (s *Server) lookup(name string) rule {
	if p, ok := s.rules[name]; ok {
		return *p
	}
	for n := name; ; {
		if p, ok := s.trees[n]; ok {
			return *p
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return s.def
		}
		n = n[i+1:]
	}
}

// SetDefault shapes the answer for names not Set (NXDOMAIN by default).
func (s *Server) SetDefault(opts ...Option) {
	r := ruleOf(opts)
	s.mu.Lock()
	s.def = r
	s.mu.Unlock()
}

// Queries returns how many queries (any type, UDP or TCP) asked for name.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// TCPQueries returns how many of them came over TCP.
func (s *Server) TCPQueries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpQueries[canonical(name)]
}

// TotalQueries returns how many queries arrived in all.
func (s *Server) TotalQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// InFlight returns how many queries are being answered right now (waiting
// on a Delay or Hold); MaxInFlight the most there ever were at once.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// MaxInFlight returns the most queries ever in flight at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// WaitInFlight blocks until n queries are in flight at once, failing the
// test after 10 seconds.
func (s *Server) WaitInFlight(t testing.TB, n int) {
	t.Helper()
	s.wait(t, func() bool { return s.inFlight >= n }, "%d queries in flight", n)
}

// WaitQueries blocks until name was asked n times, failing the test after
// 10 seconds.
func (s *Server) WaitQueries(t testing.TB, name string, n int) {
	t.Helper()
	name = canonical(name)
	s.wait(t, func() bool { return s.queries[name] >= n }, "%d queries for %s", n, name)
}

func (s *Server) wait(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("rbltest: gave up waiting for "+format, args...)
		}
	}
}

// notify wakes waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	_, isTCP := w.RemoteAddr().(*net.TCPAddr)

	s.mu.Lock()
	r := s.lookup(name)
	s.queries[name]++
	if len(r.alternate) > 0 && s.queries[name]%2 == 1 {
		for _, o := range r.alternate {
			o(&r)
		}
	}
	s.total++
	if isTCP {
		s.tcpQueries[name]++
	}
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.notify()
	s.mu.Unlock()
	// The query stops being in flight before its answer is written, so a
	// client that got the answer sees the count already lowered.
	var finishOnce sync.Once
	finish := func() {
		finishOnce.Do(func() {
			s.mu.Lock()
			s.inFlight--
			s.notify()
			s.mu.Unlock()
		})
	}
	defer finish()

	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return
		}
	}
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-s.done:
			return
		}
	}
	if r.silent {
		return
	}
	finish()
	if isTCP && r.tcpHangUp {
		_ = w.Close()
		return
	}
	if r.garbage != nil {
		_, _ = w.Write(r.garbage)
		return
	}
	m := answer(req, &r, isTCP)
	if r.wrongID {
		m.Id = req.Id + 1
	}
	if !isTCP && !r.oversize {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func answer(req *dns.Msg, r *rule, isTCP bool) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if r.mismatch {
		m.Question[0].Name = "mismatch." + q.Name
	}
	if r.rcode >= 0 {
		m.Rcode = r.rcode
		return m
	}
	if isTCP && r.tcpRcode >= 0 {
		m.Rcode = r.tcpRcode
		return m
	}
	if r.truncate && !isTCP {
		m.Truncated = true
		return m
	}
	if len(r.a) == 0 {
		m.Rcode = dns.RcodeNameError
		addSOA(m, q.Name, r)
		return m
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: r.ttl}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		for _, a := range r.a {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IP(a.AsSlice())})
		}
	case dns.TypeTXT:
		hdr.Rrtype = dns.TypeTXT
		for _, t := range r.txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: splitTXT(t)})
		}
	}
	if len(m.Answer) == 0 {
		addSOA(m, q.Name, r)
	}
	return m
}

// splitTXT cuts a text into the 255-byte strings a TXT record holds.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

func addSOA(m *dns.Msg, name string, r *rule) {
	if r.noSOA {
		return
	}
	m.Ns = append(m.Ns, &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: r.soaTTL},
		Ns:      "ns.rbltest.invalid.",
		Mbox:    "hostmaster.rbltest.invalid.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: r.soaMin,
	})
}
