package main

import (
	"fmt"
	"net"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// Socket specs are read by the daemon's rules (internal/socketspec), in
// the forms MTA admins already write: socketspec.Parse for the target of
// "run", socketspec.ParseListen for milterbench's own listeners, which may
// ask for any free port with port 0.

// listenSocket opens a listener for spec. A stale unix socket left by a
// killed process is removed; a live one (a milter still answering on it)
// or any other file at that path is an error, never removed, as in the
// daemon.
func listenSocket(spec socketspec.Spec) (net.Listener, error) {
	if spec.Network == "unix" {
		if err := socketspec.RemoveStale(spec.Address); err != nil {
			return nil, fmt.Errorf("listen %s: %w", spec, err)
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
