package milter

import (
	"net/netip"
	"os"
	"time"

	"github.com/rblmilter/rblmilter/rbl"
)

// The milter's defaults: what a zero field of Policy, ServerOptions or
// SocketOptions means. The daemon's configuration takes its defaults from
// here, and a test checks that docs/configuration.md shows them.
const (
	// DefaultReply is the reply template used when Policy.Reply is empty.
	DefaultReply = "554 5.7.1 Service unavailable; Client host [{ip}] blocked using {list}; {txt}"
	// DefaultTempfailReply is used when Policy.TempfailReply is empty.
	DefaultTempfailReply = "451 4.7.1 Service temporarily unavailable; Client host [{ip}] could not be checked against {list}"
	// DefaultHeader is the results header's name when Policy.Header is
	// empty.
	DefaultHeader = "X-RBL"
	// DefaultTimeout is the whole-connection budget when Policy.Timeout
	// is 0: as long as the engine gives one list by default.
	DefaultTimeout = rbl.DefaultTimeout
	// DefaultIdleTimeout bounds the wait for the MTA's next packet when
	// ServerOptions.IdleTimeout is 0.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultSocketMode is a unix socket's mode when SocketOptions.Mode
	// is 0: the daemon's user and group (the MTA's, with socket_group)
	// may connect, nobody else.
	DefaultSocketMode os.FileMode = 0o660
)

// DefaultSkip returns the networks that are never looked up by default:
// loopback, RFC 1918, link-local, ULA and CGNAT.
func DefaultSkip() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"127.0.0.0/8", "::1/128",
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"169.254.0.0/16", "fe80::/10",
		"fc00::/7",
		"100.64.0.0/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
