package milter

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rblmilter/rblmilter/rbl"
)

// Checker is what the milter needs from the engine (*rbl.Checker).
type Checker interface {
	Check(ctx context.Context, ip netip.Addr) rbl.Verdict
}

// SocketSpec is a parsed milter socket specification.
type SocketSpec struct {
	// Network is "tcp", "tcp6" or "unix".
	Network string
	// Address is "host:port" or a file path.
	Address string
}

// SocketOptions set ownership and mode of unix sockets.
type SocketOptions struct {
	// Mode of the socket file; 0 means DefaultSocketMode.
	Mode os.FileMode
	// Owner and Group are names or numeric ids; empty keeps the default.
	Owner, Group string
}

// ServerOptions are the Server's injected dependencies.
type ServerOptions struct {
	Logger *slog.Logger
	// Registerer receives the milter metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// IdleTimeout bounds how long a session may wait for the MTA's next
	// packet; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// NoQuickACK stops the TCP_QUICKACK re-arm before socket reads (see
	// docs/operations.md for the Sendmail stall it prevents). It exists
	// for the test that shows that stall coming back without the re-arm
	// (integration/sendmail_latency_test.go); never set it in production.
	NoQuickACK bool
}
