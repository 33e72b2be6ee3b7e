package milter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// socketForms is quoted in every socket error so the admin sees what works.
const socketForms = "inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@[::1], inet6:[::1]:PORT, unix:/path or local:/path"

// ParseSocket accepts every form admins paste: Postfix inet:HOST:PORT,
// Sendmail inet:PORT@HOST, inet6:PORT@[::1] / inet6:[::1]:PORT,
// unix:/path and local:/path.
func ParseSocket(spec string) (SocketSpec, error) {
	bad := func(why string) (SocketSpec, error) {
		return SocketSpec{}, fmt.Errorf("socket %q: %s (use %s)", spec, why, socketForms)
	}
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return bad("missing type prefix")
	}
	switch strings.ToLower(scheme) {
	case "unix", "local":
		if rest == "" {
			return bad("empty path")
		}
		if !strings.HasPrefix(rest, "/") {
			return bad("path must be absolute")
		}
		return SocketSpec{Network: "unix", Address: rest}, nil
	case "inet", "inet6":
		var host, port string
		if p, h, ok := strings.Cut(rest, "@"); ok {
			// Sendmail: PORT@HOST, the host possibly in brackets.
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), p
		} else {
			h, p, err := net.SplitHostPort(rest)
			if err != nil {
				return bad("want HOST:PORT or PORT@HOST")
			}
			host, port = h, p
		}
		if host == "" {
			// Sendmail reads a missing host as "every interface"; a milter
			// open to the network should be a deliberate choice.
			return bad("missing host (write 0.0.0.0 or [::] to listen on every interface)")
		}
		if !validHost(host) {
			return bad(fmt.Sprintf("host %q is not an IP address or host name", host))
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
		}
		network := "tcp"
		if strings.ToLower(scheme) == "inet6" {
			network = "tcp6"
		}
		return SocketSpec{Network: network, Address: net.JoinHostPort(host, port)}, nil
	default:
		return bad(fmt.Sprintf("unknown type %q", scheme))
	}
}

// validHost accepts the characters of host names, IPv4 and IPv6 addresses
// and IPv6 zones (fe80::1%eth0), so that a stray bracket or '@' is caught
// here rather than at bind time.
func validHost(host string) bool {
	for _, c := range []byte(host) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_:%", c) >= 0) {
			return false
		}
	}
	return true
}

// String renders the spec in Postfix's form.
func (s SocketSpec) String() string {
	switch s.Network {
	case "unix":
		return "unix:" + s.Address
	case "tcp6":
		return "inet6:" + s.Address
	default:
		return "inet:" + s.Address
	}
}

// Listen opens the listener for spec. For unix sockets it removes a stale
// socket file (one nobody answers on), then applies mode, owner and group
// so that the MTA's user can connect.
func Listen(spec SocketSpec, opts SocketOptions) (net.Listener, error) {
	if spec.Network != "unix" {
		ln, err := net.Listen(spec.Network, spec.Address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", spec, err)
		}
		return ln, nil
	}
	uid, gid, err := lookupOwner(opts)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	if err := removeStaleSocket(spec.Address); err != nil {
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

// removeStaleSocket deletes a socket file left behind by a crashed daemon,
// but never a live socket (another rblmilter still running) and never a
// file that is not a socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: checking for a stale socket: %w", path, err)
	}
	return os.Remove(path)
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
