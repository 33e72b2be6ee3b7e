package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
)

// socketSpec is a milter socket in the forms MTA admins already write:
// Postfix's inet:HOST:PORT and unix:/path, Sendmail's inet:PORT@HOST,
// inet6:PORT@HOST and local:/path.
type socketSpec struct {
	// Network is "tcp", "tcp6" or "unix", ready for net.Dial/net.Listen.
	Network string
	// Address is HOST:PORT for TCP, the file path for unix.
	Address string
}

func (s socketSpec) String() string {
	if s.Network == "unix" {
		return "unix:" + s.Address
	}
	return "inet:" + s.Address
}

// parseSocketSpec turns an MTA-style socket spec into a dialable address.
// Every error quotes the spec, because it usually comes straight from a flag
// or a copied main.cf line.
func parseSocketSpec(spec string) (socketSpec, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return socketSpec{}, fmt.Errorf("socket %q: want inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@HOST or unix:/path", spec)
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if rest == "" {
			return socketSpec{}, fmt.Errorf("socket %q: empty unix socket path", spec)
		}
		return socketSpec{Network: "unix", Address: rest}, nil
	case "inet", "inet6":
		network := "tcp"
		if strings.ToLower(kind) == "inet6" {
			network = "tcp6"
		}
		host, port, err := splitInet(rest)
		if err != nil {
			return socketSpec{}, fmt.Errorf("socket %q: %w", spec, err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return socketSpec{}, fmt.Errorf("socket %q: port %q is not a number from 0 to 65535", spec, port)
		}
		return socketSpec{Network: network, Address: net.JoinHostPort(host, strconv.FormatUint(n, 10))}, nil
	default:
		return socketSpec{}, fmt.Errorf("socket %q: unknown kind %q (want inet, inet6, unix or local)", spec, kind)
	}
}

// splitInet accepts PORT@HOST (Sendmail), HOST:PORT and [V6]:PORT
// (Postfix). Brackets around a Sendmail host are optional.
func splitInet(s string) (host, port string, err error) {
	if p, h, ok := strings.Cut(s, "@"); ok {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" || p == "" {
			return "", "", errors.New("want PORT@HOST")
		}
		return h, p, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", "", errors.New("want HOST:PORT or PORT@HOST")
	}
	if h == "" {
		return "", "", errors.New("missing host")
	}
	return h, p, nil
}

// listenSocket opens a listener for spec. A stale unix socket left by a
// killed process is removed; any other file at that path is an error,
// never overwritten.
func listenSocket(spec socketSpec) (net.Listener, error) {
	if spec.Network == "unix" {
		if fi, err := os.Lstat(spec.Address); err == nil {
			if fi.Mode().Type() != fs.ModeSocket {
				return nil, fmt.Errorf("listen %s: %s exists and is not a socket", spec, spec.Address)
			}
			if err := os.Remove(spec.Address); err != nil {
				return nil, fmt.Errorf("listen %s: remove stale socket: %w", spec, err)
			}
		}
	}
	ln, err := net.Listen(spec.Network, spec.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec, err)
	}
	return ln, nil
}

// specOf describes a bound listener as a socket spec, so that a listener on
// port 0 reports the port it got.
func specOf(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return "inet:" + ln.Addr().String()
}
