package rbltest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// exchange asks like ask, but returns the error instead of failing.
func exchange(srv *rbltest.Server, network, name string, udpSize uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if udpSize > 0 {
		m.SetEdns0(udpSize, false)
	}
	c := dns.Client{Net: network, Timeout: 300 * time.Millisecond, UDPSize: 65535}
	r, _, err := c.Exchange(m, srv.Addr())
	return r, err
}

// exchangeSmallBuffer asks over UDP with a 1232-byte EDNS0 buffer, which
// is also the size the client reads into.
func exchangeSmallBuffer(srv *rbltest.Server, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	c := dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, srv.Addr())
	return r, err
}

// wireSize is the size of m as sent, with name compression.
func wireSize(t *testing.T, m *dns.Msg) int {
	t.Helper()
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestFaultOptions(t *testing.T) {
	srv := rbltest.NewServer(t)

	srv.Set("garbage.test", rbltest.Garbage([]byte("\x12\x34not a DNS message")))
	if _, err := exchange(srv, "udp", "garbage.test", 0); err == nil {
		t.Error("garbage: parsed as a DNS message")
	}

	// miekg/dns skips UDP answers with the wrong ID, waiting for the
	// right one: the client times out.
	srv.Set("wrongid.test", rbltest.A("127.0.0.2"), rbltest.WrongID())
	var nerr net.Error
	if r, err := exchange(srv, "udp", "wrongid.test", 0); !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Errorf("wrong ID over UDP: %v, %v; want a timeout", r, err)
	}
	if _, err := exchange(srv, "tcp", "wrongid.test", 0); !errors.Is(err, dns.ErrId) {
		t.Errorf("wrong ID over TCP: %v, want dns.ErrId", err)
	}

	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("127.0.%d.%d", i/100, i%100+1))
	}
	srv.Set("huge.test", rbltest.A(many...))
	for _, size := range []uint16{1232, 0} {
		r, err := exchange(srv, "udp", "huge.test", size)
		if err != nil || !r.Truncated || wireSize(t, r) > max(int(size), dns.MinMsgSize) {
			t.Errorf("huge over UDP, EDNS0 size %d: %v; want truncated to fit", size, err)
		}
	}
	if r, err := exchange(srv, "tcp", "huge.test", 0); err != nil || r.Truncated || len(r.Answer) != 200 {
		t.Errorf("huge over TCP: %v", err)
	}
	srv.Set("oversize.test", rbltest.A(many...), rbltest.Oversize())
	if r, err := exchange(srv, "udp", "oversize.test", 0); err != nil || r.Truncated || len(r.Answer) != 200 || wireSize(t, r) <= 1232 {
		t.Errorf("oversize over UDP: %v (want all 200 records in one datagram)", err)
	}
	// A client with a 1232-byte buffer cannot read it.
	if _, err := exchangeSmallBuffer(srv, "oversize.test"); err == nil {
		t.Error("oversize answer read with a 1232-byte buffer")
	}

	srv.Set("tcprefused.test", rbltest.A("127.0.0.2"), rbltest.Truncate(), rbltest.TCPRcode(dns.RcodeRefused))
	if r, err := exchange(srv, "udp", "tcprefused.test", 0); err != nil || !r.Truncated {
		t.Errorf("TCPRcode over UDP: %v", err)
	}
	if r, err := exchange(srv, "tcp", "tcprefused.test", 0); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("TCPRcode over TCP: %v %v", r, err)
	}
	srv.Set("hangup.test", rbltest.A("127.0.0.2"), rbltest.TCPHangUp())
	if r, err := exchange(srv, "udp", "hangup.test", 0); err != nil || len(r.Answer) != 1 {
		t.Errorf("TCPHangUp over UDP: %v", err)
	}
	if _, err := exchange(srv, "tcp", "hangup.test", 0); err == nil {
		t.Error("TCPHangUp over TCP: got an answer")
	}

	srv.Set("flaky.test", rbltest.A("127.0.0.2"), rbltest.Alternate(rbltest.Rcode(dns.RcodeServerFailure)))
	for i := range 4 {
		r, err := exchange(srv, "udp", "flaky.test", 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{dns.RcodeServerFailure, dns.RcodeSuccess}[i%2]; r.Rcode != want {
			t.Errorf("alternate query %d: %s, want %s", i+1, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}

	srv.CloseTCP()
	if r, err := exchange(srv, "udp", "huge.test", 0); err != nil || !r.Truncated {
		t.Errorf("UDP after CloseTCP: %v", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		t.Error("TCP still accepted after CloseTCP")
	}
}

func TestStopAndStart(t *testing.T) {
	srv := rbltest.NewServer(t)
	srv.Set("up.test", rbltest.A("127.0.0.2"))
	srv.Stop()
	for _, network := range []string{"udp", "tcp"} {
		if _, err := exchange(srv, network, "up.test", 0); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s to a stopped server: %v, want connection refused", network, err)
		}
	}
	srv.Start()
	for _, network := range []string{"udp", "tcp"} {
		if r, err := exchange(srv, network, "up.test", 0); err != nil || len(r.Answer) != 1 {
			t.Errorf("%s after Start: %v", network, err)
		}
	}
}
