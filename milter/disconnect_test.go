package milter

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// connectPacket is the milter CONNECT command for an IPv4 client.
func connectPacket(ip netip.Addr) []byte {
	return packet('C', []byte("client.example\x004\x00\x19"+ip.String()+"\x00"))
}

// TestMTADisconnectsWhileLookupPending: MTAs that hang up while the
// lookup is still waiting for DNS (their own milter timeout, a client
// that went away) leave nothing behind. Each session ends once the
// connection's budget runs out, not at the list's much longer DNS
// timeout, its goroutines go, and the server keeps serving.
func TestMTADisconnectsWhileLookupPending(t *testing.T) {
	for _, stage := range []Stage{StageConnect, StageRcpt} {
		t.Run(stage.String(), func(t *testing.T) {
			dnsSrv := rbltest.NewServer(t)
			dnsSrv.SetDefault(rbltest.Silent())
			list, err := rbl.ParseSite("bl.test")
			if err != nil {
				t.Fatal(err)
			}
			// The list's own timeout is far longer than the budget, so
			// only the budget can end the sessions in time. (The lookups
			// themselves go on to fill the cache until the list's
			// timeout.)
			checker := realChecker(t, []string{dnsSrv.Addr()}, rbl.Config{Lists: []rbl.List{list}, Timeout: 3 * time.Second})
			p := basePolicy()
			p.Stage = stage
			p.Timeout = 300 * time.Millisecond
			ts := startServer(t, p, checker)
			before := runtime.NumGoroutine()

			const n = 20
			var conns []net.Conn
			for k := range n {
				ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(k + 1)})
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write(append(optneg(), connectPacket(ip)...)); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				dnsSrv.WaitQueries(t, rbl.QueryName(ip, "bl.test"), 1)
			}
			// Every lookup is waiting for DNS: hang up, hard.
			hungUp := time.Now()
			for _, c := range conns {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			testutil.WaitFor(t, "no session in flight", func() bool { return promtest.ToFloat64(ts.srv.metrics.inFlight) == 0 })
			if took := time.Since(hungUp); took > p.Timeout+time.Second {
				t.Errorf("sessions took %v to end after the MTA hung up; budget %v", took, p.Timeout)
			}
			if stage == StageConnect {
				// The lookups were decided (fail-open) and logged,
				// though nobody was left to hear.
				testutil.WaitFor(t, fmt.Sprintf("%d decisions logged", n), func() bool { return strings.Count(ts.logs.String(), "msg=decision") == n })
				if got := strings.Count(ts.logs.String(), "decision=accept"); got != n {
					t.Errorf("%d of %d abandoned lookups decided accept:\n%s", got, n, ts.logs.String())
				}
			}
			testutil.WaitFor(t, "the sessions' goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
			if stage == StageRcpt && strings.Contains(ts.logs.String(), "msg=decision") {
				// At stage rcpt the decision is taken at RCPT TO, which
				// never came.
				t.Errorf("decisions logged without RCPT TO:\n%s", ts.logs.String())
			}

			listed := netip.MustParseAddr("192.0.2.200")
			dnsSrv.Set(rbl.QueryName(listed, "bl.test"), rbltest.A("127.0.0.2"))
			s := mta(t, ts.addr)
			act := connect(t, s, gomilter.FamilyInet, listed.String())
			if stage == StageRcpt {
				if _, err := s.Mail("<a@example.org>", nil); err != nil {
					t.Fatal(err)
				}
				if act, err = s.Rcpt("<user@example.org>", nil); err != nil {
					t.Fatal(err)
				}
			}
			if act.Code != gomilter.ActReplyCode || act.SMTPCode != 554 {
				t.Errorf("after the hang-ups, a listed client: %+v", act)
			}
		})
	}
}

// TestMTAVanishesMidSession: an MTA that goes away at any point of a
// session (after negotiation, between macros and CONNECT, after the
// verdict) ends only that session.
func TestMTAVanishesMidSession(t *testing.T) {
	fc := &fakeChecker{}
	p := basePolicy()
	p.Stage = StageRcpt
	ts := startServer(t, p, fc)
	ip := netip.MustParseAddr("192.0.2.9")
	steps := [][]byte{
		optneg(),
		packet('D', []byte("C{client_addr}\x00192.0.2.9\x00")),
		connectPacket(ip),
		packet('D', []byte("M{auth_authen}\x00\x00")),
		packet('M', []byte("<a@example.org>\x00")),
		packet('R', []byte("<b@example.org>\x00")),
	}
	for cut := range len(steps) + 1 {
		t.Run(fmt.Sprintf("after %d packets", cut), func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range steps[:cut] {
				if _, err := c.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		})
	}
	testutil.WaitFor(t, "no session in flight", func() bool { return promtest.ToFloat64(ts.srv.metrics.inFlight) == 0 })
	if act := connect(t, mta(t, ts.addr), gomilter.FamilyInet, "192.0.2.10"); act.Code != gomilter.ActContinue {
		t.Errorf("after the vanished sessions: %+v", act)
	}
}
