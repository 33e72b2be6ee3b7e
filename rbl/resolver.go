package rbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver sends one DNS question and returns the answer. It returns a
// response only for NOERROR and NXDOMAIN; every other rcode, a timeout or a
// network failure is an error.
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// ResolverConfig configures NewResolver.
type ResolverConfig struct {
	// Servers are "host:port" addresses (a bare IP means port 53), tried
	// in order. Hosts must be IP addresses: the resolver cannot look up
	// its own servers.
	Servers []string
	// AttemptTimeout caps the time one server gets for one query. 0 splits
	// the time left before the query's deadline evenly among the servers
	// not yet tried, so one silent server cannot eat the whole budget.
	AttemptTimeout time.Duration
	// UDPSize is the EDNS0 buffer size announced; 0 means 1232, the size
	// that avoids IP fragmentation.
	UDPSize uint16
	// Retransmit is how long a UDP query waits for its answer before it
	// is sent again, on the same socket (so that an answer to either copy
	// counts), each wait twice the one before, until the attempt's time is
	// up. 0 means 800ms; a negative value never sends a query twice. A
	// lost packet then costs this wait instead of the whole attempt, which
	// at the connect stage is the client's whole lookup budget.
	Retransmit time.Duration
}

// DNSResolver is the Resolver used in production, built on
// github.com/miekg/dns. It asks over UDP with EDNS0, retries over TCP when an
// answer is truncated, and moves on to the next server on a timeout, a
// server failure or a mismatched answer. It is safe for concurrent use.
type DNSResolver struct {
	servers        []string
	attemptTimeout time.Duration
	retransmit     time.Duration
	udpSize        uint16
	udp, tcp       dns.Client
}

// defaultAttemptTimeout bounds an attempt whose context has no deadline.
const defaultAttemptTimeout = 5 * time.Second

// defaultRetransmit is ResolverConfig.Retransmit's default: well above a
// local resolver's answer time, even for a recursion it has to do, and
// small beside the default lookup budget (DefaultTimeout), which leaves
// room for two more copies.
const defaultRetransmit = 800 * time.Millisecond

// NewResolver returns a resolver that asks cfg.Servers.
func NewResolver(cfg ResolverConfig) (*DNSResolver, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("resolver: no DNS servers configured")
	}
	r := &DNSResolver{
		attemptTimeout: cfg.AttemptTimeout,
		retransmit:     cfg.Retransmit,
		udpSize:        cfg.UDPSize,
		// Every attempt runs under a context deadline (attemptContext);
		// the long client timeout keeps miekg/dns's 2 s default from
		// cutting a longer per-list timeout short.
		udp: dns.Client{Net: "udp", Timeout: time.Hour},
		tcp: dns.Client{Net: "tcp", Timeout: time.Hour},
	}
	if r.udpSize == 0 {
		r.udpSize = 1232
	}
	if r.retransmit == 0 {
		r.retransmit = defaultRetransmit
	}
	if r.udpSize < dns.MinMsgSize {
		return nil, fmt.Errorf("resolver: UDP size %d is below the DNS minimum %d", cfg.UDPSize, dns.MinMsgSize)
	}
	if cfg.AttemptTimeout < 0 {
		return nil, fmt.Errorf("resolver: negative attempt timeout %s", cfg.AttemptTimeout)
	}
	for _, s := range cfg.Servers {
		addr, err := normalizeServer(s)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, addr)
	}
	return r, nil
}

func normalizeServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	return "", fmt.Errorf("resolver %q: not an IP address or IP:port (e.g. 127.0.0.1, 127.0.0.1:5353, [::1]:53)", s)
}

// ServersFromResolvConf reads nameserver lines from a resolv.conf file and
// returns them as "host:port".
func ServersFromResolvConf(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolver: reading %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("resolver: %s has no nameserver line", path)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// QueryError is a failed DNS query. Its message names the server and what
// went wrong but never the query name, which may contain a secret key.
type QueryError struct {
	// Server is the last server asked ("host:port").
	Server string
	// Rcode is the answer's response code, or -1 when there was no
	// usable answer.
	Rcode int
	// Timeout is true when the server did not answer in time.
	Timeout bool
	// Err is the underlying error, if any.
	Err error
}

// Error names the server and what went wrong, never the query name.
func (e *QueryError) Error() string {
	switch {
	case e.Timeout:
		return fmt.Sprintf("DNS server %s: timeout", e.Server)
	case e.Rcode >= 0:
		return fmt.Sprintf("DNS server %s: answered %s", e.Server, rcodeName(e.Rcode))
	case e.Err != nil:
		return fmt.Sprintf("DNS server %s: %v", e.Server, e.Err)
	}
	return fmt.Sprintf("DNS server %s: failed", e.Server)
}

// Unwrap returns the underlying error.
func (e *QueryError) Unwrap() error { return e.Err }

// Is lets errors.Is(err, ErrTimeout) find timeouts.
func (e *QueryError) Is(target error) bool { return target == ErrTimeout && e.Timeout }

// ErrTimeout matches (with errors.Is) every lookup error that is a timeout.
var ErrTimeout = errors.New("timeout")

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}

// errMismatch is an answer to a different question: a broken or spoofing
// server.
var errMismatch = errors.New("answer does not match the question")

// Query asks the servers in turn for name (no trailing dot needed) and
// returns the first NOERROR or NXDOMAIN answer.
func (r *DNSResolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	fqdn := dns.Fqdn(name)
	var last error
	for i, server := range r.servers {
		if err := ctx.Err(); err != nil {
			return nil, contextError(server, err)
		}
		actx, cancel := r.attemptContext(ctx, len(r.servers)-i)
		resp, err := r.exchange(actx, fqdn, qtype, server)
		cancel()
		if err == nil {
			return resp, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, contextError(server, ctxErr)
		}
		last = err
	}
	return nil, last
}

func contextError(server string, err error) error {
	return &QueryError{Server: server, Rcode: -1, Timeout: errors.Is(err, context.DeadlineExceeded), Err: err}
}

// attemptContext gives one server its share of the time left. A share
// that is all of it (the last server, without AttemptTimeout) is ctx
// itself: a second timer for the same deadline would only cost a cold
// query its allocations.
func (r *DNSResolver) attemptContext(ctx context.Context, serversLeft int) (context.Context, context.CancelFunc) {
	timeout := r.attemptTimeout
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		share := left / time.Duration(serversLeft)
		if timeout == 0 || share < timeout {
			timeout = share
		}
		if timeout >= left {
			return ctx, func() {}
		}
	} else if timeout == 0 {
		timeout = defaultAttemptTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// exchange asks one server, over UDP and then TCP if the answer was
// truncated.
func (r *DNSResolver) exchange(ctx context.Context, fqdn string, qtype uint16, server string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.RecursionDesired = true
	m.SetEdns0(r.udpSize, false)
	resp, err := r.exchangeUDP(ctx, m, server)
	if err == nil && resp.Truncated {
		m.Id = dns.Id()
		resp, err = r.exchangeOver(ctx, &r.tcp, m, server)
	}
	if err != nil {
		var nerr net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout()
		return nil, &QueryError{Server: server, Rcode: -1, Timeout: timeout, Err: err}
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, fqdn) ||
		resp.Question[0].Qtype != qtype || resp.Question[0].Qclass != dns.ClassINET {
		return nil, &QueryError{Server: server, Rcode: -1, Err: errMismatch}
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, &QueryError{Server: server, Rcode: resp.Rcode}
	}
	return resp, nil
}

// exchangeUDP sends m from a fresh UDP socket (its own random source port)
// and waits for the answer until ctx ends, sending m again on the same
// socket when r.retransmit and then each doubled wait pass without one.
// As miekg/dns's own exchange does, it skips answers with another ID.
func (r *DNSResolver) exchangeUDP(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	conn, err := r.udp.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The context's end unblocks a read (miekg/dns only honours
	// deadlines); a read deadline set below could replace that, so ctx is
	// checked after setting one.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.UDPSize = r.udpSize
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(defaultAttemptTimeout)
	}
	wait := r.retransmit
	for {
		if err := conn.WriteMsg(m); err != nil {
			return nil, ctxErrOr(ctx, err)
		}
		readBy := end
		if wait > 0 {
			if t := time.Now().Add(wait); t.Before(end) {
				readBy = t
			}
		}
		_ = conn.SetReadDeadline(readBy)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err := readAnswer(conn, m.Id)
		if err == nil {
			return resp, nil
		}
		var nerr net.Error
		if readBy.Before(end) && errors.As(err, &nerr) && nerr.Timeout() && ctx.Err() == nil {
			wait *= 2
			continue
		}
		return nil, ctxErrOr(ctx, err)
	}
}

// readAnswer reads from conn until an answer with ID id comes, or an
// error (a read deadline among them).
func readAnswer(conn *dns.Conn, id uint16) (*dns.Msg, error) {
	for {
		resp, err := conn.ReadMsg()
		if err != nil {
			return nil, err
		}
		if resp.Id == id {
			return resp, nil
		}
	}
}

// ctxErrOr is ctx's error once it has ended, else err.
func ctxErrOr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// exchangeOver sends m over a fresh connection that is unblocked as soon as
// ctx ends (miekg/dns itself only honours the deadline, not cancellation).
func (r *DNSResolver) exchangeOver(ctx context.Context, c *dns.Client, m *dns.Msg, server string) (*dns.Msg, error) {
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return nil, ctxErrOr(ctx, err)
	}
	if resp.Id != m.Id {
		return nil, dns.ErrId
	}
	return resp, nil
}
