package milter

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// pipeListener hands out the server ends of net.Pipe connections: a write
// blocks until the test reads it, so the test decides when a reply is
// delivered.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// acceptWatch tells when the server starts writing an ACCEPT reply.
type acceptWatch struct {
	net.Conn
	started chan struct{}
	once    sync.Once
}

func (c *acceptWatch) Write(p []byte) (int, error) {
	if len(p) >= 5 && p[4] == 'a' {
		c.once.Do(func() { close(c.started) })
	}
	return c.Conn.Write(p)
}

// readPacket reads one milter packet and returns its command byte.
func readPacket(t *testing.T, c net.Conn) byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n uint32
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil || n == 0 {
		t.Fatalf("reading a reply: %v", err)
	}
	return body[0]
}

// A shutdown that begins while the ACCEPT of a session is being written
// must let the MTA have it: losing it would make the MTA apply its default
// action (Postfix: tempfail) to a client that was accepted. Once it is
// written the session is finished and the shutdown does not wait for the
// MTA to hang up.
func TestShutdownWhileAcceptIsWritten(t *testing.T) {
	srv, err := NewServer(basePolicy(), &fakeChecker{}, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	client, server := net.Pipe()
	defer client.Close()
	watch := &acceptWatch{Conn: server, started: make(chan struct{})}
	ln.conns <- watch

	go func() {
		client.Write(append(optneg(), connectPacket(netip.MustParseAddr("192.0.2.1"))...))
	}()
	if code := readPacket(t, client); code != 'O' {
		t.Fatalf("negotiation reply %q", code)
	}
	<-watch.started // the ACCEPT is on its way, blocked in the pipe

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()
	testutil.WaitFor(t, "the shutdown to begin", srv.closing)
	// A Shutdown that thought the session finished closes it now; give it
	// the chance (a correct one keeps waiting, so this only ever delays).
	gone := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(gone) && len(srv.snapshotConns()) > 0 {
		time.Sleep(time.Millisecond) // polling for a failure, not for an event
	}
	if code := readPacket(t, client); code != 'a' {
		t.Fatalf("got %q, want the ACCEPT ('a')", code)
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits for a session that got its ACCEPT")
	}
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}

// snapshotConns lists the open connections.
func (s *Server) snapshotConns() []*trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*trackedConn, 0, len(s.conns))
	for tc := range s.conns {
		out = append(out, tc)
	}
	return out
}
