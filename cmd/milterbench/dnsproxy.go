package main

import (
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// dnsUpstream is the real DNS server a proxying "dns" command forwards
// to, so that a benchmark can put a DNSBL server (rbldnsd) at a distance
// (-delay) and count what reaches it, with its own data and answers.
type dnsUpstream struct {
	addr string
	udp  *dns.Client
	tcp  *dns.Client
}

func newDNSUpstream(addr string, timeout time.Duration) (*dnsUpstream, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("-forward %q: want HOST:PORT like 127.0.0.1:5301", addr)
	}
	return &dnsUpstream{
		addr: addr,
		udp:  &dns.Client{Net: "udp", Timeout: timeout},
		tcp:  &dns.Client{Net: "tcp", Timeout: timeout},
	}, nil
}

// relay asks the upstream the client's question over the transport the
// client used, and passes the answer back unchanged. An upstream failure
// leaves the client without an answer, as a lost packet would.
func (u *dnsUpstream) relay(w dns.ResponseWriter, r *dns.Msg, c *zoneCounters) {
	client := u.udp
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		client = u.tcp
	}
	resp, _, err := client.Exchange(r, u.addr)
	if err != nil {
		c.dropped.Add(1)
		return
	}
	switch {
	case resp.Rcode == dns.RcodeNameError:
		c.nxdomain.Add(1)
	case resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0:
		c.listed.Add(1)
	}
	_ = w.WriteMsg(resp)
}
