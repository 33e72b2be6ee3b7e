//go:build integration && linux

package integration

import (
	"context"
	"net"
	"net/http"
	"time"
)

// dialer opens the test's own connections to the programs it runs: on the
// host's loopback, or from inside a network namespace the test created.
type dialer interface {
	// dial connects to remote; a non-empty local is the source address.
	dial(ctx context.Context, network, local, remote string) (net.Conn, error)
}

// hostDialer dials in the test process's own network namespace.
type hostDialer struct{}

func (hostDialer) dial(ctx context.Context, network, local, remote string) (net.Conn, error) {
	return dialFrom(ctx, network, local, remote)
}

func dialFrom(ctx context.Context, network, local, remote string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		ip := net.ParseIP(local)
		switch network {
		case "udp", "udp4", "udp6":
			d.LocalAddr = &net.UDPAddr{IP: ip}
		default:
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return d.DialContext(ctx, network, remote)
}

// httpClient is an HTTP client whose connections go through d.
func httpClient(d dialer) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.dial(ctx, network, "", addr)
			},
			DisableKeepAlives: true,
		},
	}
}
