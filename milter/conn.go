package milter

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// trackedConn is a milter connection as the Server sees it: it enforces the
// idle timeout, undoes delayed ACKs before each read, and tells the Server
// when it closes so that Shutdown can drain.
type trackedConn struct {
	net.Conn
	srv  *Server
	idle time.Duration
	// raw is the socket for TCP_QUICKACK; nil for unix sockets.
	raw syscall.RawConn
	// in buffers reads. go-milter reads a packet's length and its body
	// with two reads, and every socket read costs a system call, a
	// deadline update and a TCP_QUICKACK re-arm; buffered, a packet (and
	// often the next one, as the MTA writes macros and CONNECT back to
	// back) takes one.
	in *bufio.Reader
	// armedAt is when the read deadline was last set to armedAt+idle;
	// only the session's goroutine reads, so it needs no lock.
	armedAt time.Time
	// ackOwed is set when a socket read returns data and cleared when a
	// reply is written, which carries the ACK: only in between can the
	// MTA be waiting for an ACK of ours. Session goroutine only.
	ackOwed bool
	// final is set once rblmilter sent ACCEPT for the connection: the MTA
	// will not ask anything more, so Shutdown need not wait for it.
	// stackGrown is set once the session goroutine's stack was grown
	// (see growStack). Session goroutine only.
	stackGrown bool
	final      atomic.Bool
	closeOnce  sync.Once
}

func newTrackedConn(c net.Conn, srv *Server, idle time.Duration) *trackedConn {
	tc := &trackedConn{Conn: c, srv: srv, idle: idle}
	if t, ok := c.(*net.TCPConn); ok && srv.quickACK {
		if raw, err := t.SyscallConn(); err == nil {
			tc.raw = raw
		}
	}
	tc.in = bufio.NewReaderSize(socketReader{tc}, readBufferSize)
	return tc
}

// readBufferSize holds the packets of a connect stage (negotiation, the
// connect macros, CONNECT: a few hundred bytes) without costing much per
// idle connection; larger packets are read straight into go-milter's
// buffer.
const readBufferSize = 512

// Read serves go-milter from the buffer.
func (c *trackedConn) Read(p []byte) (int, error) { return c.in.Read(p) }

// socketReader is what trackedConn's buffer reads from.
type socketReader struct{ c *trackedConn }

// Read arms the idle deadline (up to a second early: see the slack below),
// so that an MTA that vanishes without closing does not pin a goroutine
// forever, and re-arms TCP_QUICKACK when an ACK is owed: Sendmail writes a
// macro packet and the next command as two small segments, and with Nagle
// on its side and delayed ACK on ours each milter step would wait for our
// delayed-ACK timer (docs/performance.md measures the stall). Setting
// TCP_QUICKACK sends the delayed ACK at once. After a reply there
// is nothing to acknowledge, and skipping the system call there saves most
// of them (and the bare ACK packets quick-ACK mode sends).
func (r socketReader) Read(p []byte) (int, error) {
	c := r.c
	if !c.stackGrown {
		c.stackGrown = true
		growStack()
	}
	// Moving the deadline costs a timer update; within one session's
	// burst of packets it would move by microseconds, so it is moved
	// only when it would move by more than the slack.
	if now := time.Now(); now.Sub(c.armedAt) >= min(c.idle/16, time.Second) {
		if err := c.Conn.SetReadDeadline(now.Add(c.idle)); err != nil {
			return 0, err
		}
		c.armedAt = now
	}
	if c.raw != nil && c.ackOwed {
		quickACK(c.raw)
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.ackOwed = true
	}
	return n, err
}

// Write notices final ACCEPT replies. go-milter writes each packet with a
// single Write: 4 length bytes, then the reply code. The connection counts
// as finished only once the ACCEPT is written: a Shutdown that closed it
// while the write was under way would rob the MTA of the verdict. One
// finished while shutting down is closed at once, so that the drain does
// not wait for the MTA to hang up.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.ackOwed = false
	n, err := c.Conn.Write(p)
	if err == nil && len(p) >= 5 && p[4] == 'a' {
		c.final.Store(true)
		if c.srv.closing() {
			c.Close()
		}
	}
	return n, err
}

// Close is idempotent: go-milter closes the connection when a session
// ends, and Shutdown may close it first.
func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.srv.forget(c)
	})
	return err
}

// genListener is what one generation's go-milter server accepts from:
// the Server's listener, with the Server's tracking, accept-error backoff
// and generation check in Accept. It serves only while its generation is
// current: a connection accepted after a Reload ends the go-milter server
// (errRetired) and is carried over to the current generation's.
type genListener struct {
	net.Listener
	srv *Server
	gen *generation
	// first is a connection carried over from the retired generation,
	// served before anything new is accepted. retiredWith is the
	// connection that found this generation retired. Both belong to the
	// one goroutine of go-milter's accept loop, and to Server.Serve once
	// that has returned.
	first, retiredWith *trackedConn
}

// errRetired ends a retired generation's go-milter server.
var errRetired = errors.New("milter: configuration generation retired")

func (l *genListener) Accept() (net.Conn, error) {
	if c := l.first; c != nil {
		l.first = nil
		return c, nil
	}
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.srv.closing() {
				return nil, ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait rather than
				// spin or give up, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.srv.logger.Error("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return nil, err
		}
		tc, ok := l.srv.track(c)
		if !ok {
			c.Close()
			return nil, ErrServerClosed
		}
		if l.srv.gen.Load() != l.gen {
			l.retiredWith = tc
			return nil, errRetired
		}
		return tc, nil
	}
}

// Close leaves the Server's listener open: go-milter closes its listener
// when its Serve ends, which for a retired generation is not the end of
// the Server's.
func (l *genListener) Close() error { return nil }

// growStack grows the calling goroutine's stack to what a session needs,
// in one step, while it is still shallow. go-milter starts each session
// on a new goroutine with the runtime's smallest stack, which then doubled
// twice in the middle of a decision (setting the first read deadline,
// formatting the decision line) with many frames to copy and adjust each
// time; growing early copies a few frames once.
//
//go:noinline
func growStack() {
	var frame [sessionStackBytes]byte
	useStack(frame[:])
}

// sessionStackBytes is about the stack a connect-stage decision uses.
const sessionStackBytes = 6 << 10

//go:noinline
func useStack(b []byte) { b[0] = 1 }
