package milter

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

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

// ParseSocket accepts every form admins paste: Postfix inet:HOST:PORT,
// Sendmail inet:PORT@HOST, inet6:PORT@[::1] / inet6:[::1]:PORT,
// unix:/path and local:/path. milterbench reads specs by the same rules
// (internal/socketspec).
func ParseSocket(spec string) (SocketSpec, error) {
	s, err := socketspec.Parse(spec)
	return SocketSpec(s), err
}

// String renders the spec in Postfix's form.
func (s SocketSpec) String() string { return socketspec.Spec(s).String() }

// Listen opens the listener for spec. For unix sockets it removes a stale
// socket file (one nobody answers on, never a live one), then applies
// mode, owner and group so that the MTA's user can connect.
//
// TCP connections it accepts have keepalive off. Go turns it on for every
// accepted connection, at four setsockopt calls each (SO_KEEPALIVE and
// the three timers), for probes that a milter session, short and local,
// never needs: the Server's idle timeout already ends a session whose MTA
// vanished.
func Listen(spec SocketSpec, opts SocketOptions) (net.Listener, error) {
	if spec.Network != "unix" {
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), spec.Network, spec.Address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", spec, err)
		}
		return ln, nil
	}
	uid, gid, err := lookupOwner(opts)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	if err := socketspec.RemoveStale(spec.Address); err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	ln, err := net.Listen("unix", spec.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	mode := opts.Mode
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.Chmod(spec.Address, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: socket_mode: %w", spec, err)
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Chown(spec.Address, uid, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: socket owner/group: %w", spec, err)
		}
	}
	return ln, nil
}

// lookupOwner resolves SocketOptions.Owner/Group (names or numeric ids) to
// ids; -1 means unchanged, as os.Chown expects.
func lookupOwner(opts SocketOptions) (uid, gid int, err error) {
	uid, gid = -1, -1
	if opts.Owner != "" {
		if n, err := strconv.Atoi(opts.Owner); err == nil {
			uid = n
		} else {
			u, err := user.Lookup(opts.Owner)
			if err != nil {
				return 0, 0, fmt.Errorf("socket_owner %q: %w", opts.Owner, err)
			}
			uid, _ = strconv.Atoi(u.Uid)
		}
	}
	if opts.Group != "" {
		if n, err := strconv.Atoi(opts.Group); err == nil {
			gid = n
		} else {
			g, err := user.LookupGroup(opts.Group)
			if err != nil {
				return 0, 0, fmt.Errorf("socket_group %q: %w", opts.Group, err)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}
