package milter

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
)

// packet frames a milter command: 4-byte length, command byte, data.
func packet(code byte, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	return append(append(b, code), data...)
}

func optneg() []byte {
	d := make([]byte, 12)
	binary.BigEndian.PutUint32(d, 6)
	return packet('O', d)
}

// malformedInputs are byte streams a broken or hostile MTA might send.
func malformedInputs() map[string][]byte {
	giantMacros := []byte{'C'}
	for len(giantMacros) < 900_000 {
		giantMacros = append(giantMacros, "{m}\x00vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\x00"...)
	}
	return map[string][]byte{
		"zero length":                 {0, 0, 0, 0},
		"length over the 1 MiB limit": binary.BigEndian.AppendUint32(nil, 1<<30),
		"truncated length":            {0, 0},
		"truncated payload":           append(binary.BigEndian.AppendUint32(nil, 100), 'C', 'x'),
		"unknown command":             packet('Z', []byte("junk")),
		"connect without negotiation": packet('C', []byte("h\x004\x00\x19192.0.2.200\x00")),
		"connect with no family":      append(optneg(), packet('C', []byte("h\x00"))...),
		"connect short port":          append(optneg(), packet('C', []byte("h\x004\x01"))...),
		"empty macro packet":          append(optneg(), packet('D', nil)...),
		"giant macro list":            append(optneg(), packet('D', giantMacros)...),
		"mail before connect":         append(optneg(), packet('M', []byte("<a@b>\x00"))...),
		"quit at once":                packet('Q', nil),
	}
}

// TestMalformedInputNeverHangsOrKillsTheServer sends each input, then
// closes the write side like a vanishing MTA, and expects the server to
// end the session by itself and keep serving others.
func TestMalformedInputNeverHangsOrKillsTheServer(t *testing.T) {
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{
		netip.MustParseAddr("192.0.2.1"): listedVerdict("192.0.2.1", ""),
	}}
	ts := startServer(t, basePolicy(), fc)
	for name, in := range malformedInputs() {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(in); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
			if err := drainUntilClosed(c); err != nil {
				t.Fatalf("server did not end the session: %v", err)
			}
		})
	}
	s := mta(t, ts.addr)
	if act := connect(t, s, gomilter.FamilyInet, "192.0.2.1"); act.SMTPCode != 554 {
		t.Fatalf("server broken after malformed input: %+v", act)
	}
	s.Close()
	testutil.WaitFor(t, "no session in flight", func() bool { return promtest.ToFloat64(ts.srv.metrics.inFlight) == 0 })
}

// TestManyIdleConnectionsAreReleased opens connections that never speak;
// the idle timeout must close every one and free its goroutine.
func TestManyIdleConnectionsAreReleased(t *testing.T) {
	srv, err := NewServer(basePolicy(), &fakeChecker{}, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(t.Context())
	before := runtime.NumGoroutine()

	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection: %v, want EOF", err)
		}
	}
	testutil.WaitFor(t, "no session in flight", func() bool { return promtest.ToFloat64(srv.metrics.inFlight) == 0 })
	testutil.WaitFor(t, "the connections' goroutines to end", func() bool { return runtime.NumGoroutine() <= before+5 })
}

// FuzzMilterSession feeds arbitrary bytes through the real listener and
// go-milter's parser into the session code.
func FuzzMilterSession(f *testing.F) {
	for _, in := range malformedInputs() {
		if len(in) < 4096 {
			f.Add(in)
		}
	}
	f.Add(append(append(optneg(), packet('D', []byte("C{client_addr}\x00IPv6:2001:db8::1\x00"))...), packet('C', []byte("[IPv6:2001:db8::1]\x006\x00\x19IPv6:2001:db8::1\x00"))...))
	fc := &fakeChecker{listed: map[netip.Addr]rbl.Verdict{
		netip.MustParseAddr("192.0.2.1"): listedVerdict("192.0.2.1", "txt"),
	}}
	srv, err := NewServer(Policy{Stage: StageRcpt, Action: ActionTag, Timeout: time.Second}, fc, ServerOptions{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		if err := drainUntilClosed(c); err != nil {
			t.Fatalf("session did not end: %v", err)
		}
	})
}

// drainUntilClosed reads until the server ends the session. A reset counts
// as ended: a server that closes with our bytes still unread sends RST.
// Only the read deadline passing is a failure.
func drainUntilClosed(c net.Conn) error {
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return err
}
