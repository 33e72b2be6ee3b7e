// Package socketspec reads milter socket specifications in the forms MTA
// admins write (Postfix's inet:HOST:PORT and unix:/path, Sendmail's
// inet:PORT@HOST, inet6:PORT@[::1] and local:/path) and clears the way for
// a unix socket. The daemon (package milter) and milterbench, which must
// not import it, share these rules through this package, so that a spec
// means the same to both and neither ever removes a live socket.
package socketspec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Forms is quoted in every parse error so the admin sees what works.
const Forms = "inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@[::1], inet6:[::1]:PORT, unix:/path or local:/path"

// Spec is a parsed milter socket specification.
type Spec struct {
	// Network is "tcp", "tcp6" or "unix", ready for net.Dial and
	// net.Listen.
	Network string
	// Address is "host:port" or a file path.
	Address string
}

// Parse reads a socket to dial, or to serve on where the MTA must find
// it: a TCP port is 1 to 65535.
func Parse(spec string) (Spec, error) { return parse(spec, 1) }

// ParseListen is Parse for a listener that may let the kernel choose its
// port with port 0 (a test's or a benchmark's own server, which then
// reports the port it got).
func ParseListen(spec string) (Spec, error) { return parse(spec, 0) }

func parse(spec string, minPort int) (Spec, error) {
	bad := func(why string) (Spec, error) {
		return Spec{}, fmt.Errorf("socket %q: %s (use %s)", spec, why, Forms)
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
		return Spec{Network: "unix", Address: rest}, nil
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
		if err != nil || n < minPort || n > 65535 {
			return bad(fmt.Sprintf("port %q is not a number from %d to 65535", port, minPort))
		}
		network := "tcp"
		if strings.ToLower(scheme) == "inet6" {
			network = "tcp6"
		}
		return Spec{Network: network, Address: net.JoinHostPort(host, port)}, nil
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
func (s Spec) String() string {
	switch s.Network {
	case "unix":
		return "unix:" + s.Address
	case "tcp6":
		return "inet6:" + s.Address
	default:
		return "inet:" + s.Address
	}
}

// RemoveStale deletes a socket file left behind by a crashed process, so
// that a listener can take its path, but never a live socket (another
// daemon still answering on it) and never a file that is not a socket. A
// path where nothing exists is fine.
func RemoveStale(path string) error {
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
