package milter

import (
	"net"
	"testing"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// ServerOptions.NoQuickACK decides whether accepted TCP connections get
// the socket handle that the TCP_QUICKACK re-arm needs.
func TestNoQuickACKOption(t *testing.T) {
	for _, noQuickACK := range []bool{false, true} {
		ts := startServerWith(t, basePolicy(), &fakeChecker{}, ServerOptions{NoQuickACK: noQuickACK})
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "the connection to be tracked", func() bool { return len(ts.srv.snapshotConns()) == 1 })
		if rearms := ts.srv.snapshotConns()[0].raw != nil; rearms == noQuickACK {
			t.Errorf("NoQuickACK = %v: connection re-arms TCP_QUICKACK = %v", noQuickACK, rearms)
		}
		c.Close()
	}
}
