package milter

import (
	"net"
	"testing"
)

// ServerOptions.NoQuickACK decides whether accepted TCP connections get
// the socket handle that the TCP_QUICKACK re-arm needs.
func TestNoQuickACKOption(t *testing.T) {
	for _, noQuickACK := range []bool{false, true} {
		srv, err := NewServer(basePolicy(), &fakeChecker{}, ServerOptions{NoQuickACK: noQuickACK})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return len(srv.snapshotConns()) == 1 })
		if rearms := srv.snapshotConns()[0].raw != nil; rearms == noQuickACK {
			t.Errorf("NoQuickACK = %v: connection re-arms TCP_QUICKACK = %v", noQuickACK, rearms)
		}
		c.Close()
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}
}
