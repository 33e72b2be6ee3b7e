package milter

// STUBS: agreed API, implemented by the lead in server.go/socket.go.

import (
	"context"
	"log/slog"
	"net"
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
	// Network is "tcp", "tcp4", "tcp6" or "unix".
	Network string
	// Address is "host:port" or a file path.
	Address string
}

// ParseSocket accepts every form admins paste: Postfix inet:HOST:PORT,
// Sendmail inet:PORT@HOST, inet6:PORT@[::1] / inet6:[::1]:PORT,
// unix:/path and local:/path.
func ParseSocket(spec string) (SocketSpec, error) { panic("todo") }

// SocketOptions set ownership and mode of unix sockets.
type SocketOptions struct {
	// Mode of the socket file; 0 means 0660.
	Mode os.FileMode
	// Owner and Group are names or numeric ids; empty keeps the default.
	Owner, Group string
}

// Listen opens the listener for spec, removing a stale unix socket file.
func Listen(spec SocketSpec, opts SocketOptions) (net.Listener, error) { panic("todo") }

// ServerOptions are the Server's injected dependencies.
type ServerOptions struct {
	Logger *slog.Logger
	// Registerer receives the milter metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// IdleTimeout bounds how long a session may wait for the MTA's next
	// packet; 0 means 10 minutes.
	IdleTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves milter sessions.
type Server struct{}

// NewServer returns a server deciding with policy and checker. It returns
// an error naming the bad field when policy is invalid.
func NewServer(policy Policy, checker Checker, opts ServerOptions) (*Server, error) {
	panic("todo")
}

// Reload swaps policy and checker atomically; sessions already in flight
// keep the pair they started with.
func (s *Server) Reload(policy Policy, checker Checker) error { panic("todo") }

// Serve accepts sessions on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { panic("todo") }

// Shutdown stops accepting, waits for in-flight sessions until ctx is done,
// then closes those left.
func (s *Server) Shutdown(ctx context.Context) error { panic("todo") }

// ValidatePolicy reports the first problem of p, naming the field.
func ValidatePolicy(p Policy) error { panic("todo") }
