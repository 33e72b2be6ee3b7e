package milter

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// FuzzParseSocket: no spec panics the parser; every rejection names the
// spec and the forms that work; every accepted spec is one Listen can use
// and survives a round trip through String.
func FuzzParseSocket(f *testing.F) {
	for _, s := range []string{
		"inet:127.0.0.1:8890", "inet:8890@127.0.0.1", "inet6:8890@[::1]", "inet6:[::1]:8890", "inet:[::1]:8890",
		"unix:/run/rblmilter/rblmilter.sock", "local:/var/spool/postfix/rbl.sock", "INET:0.0.0.0:8890", "inet:localhost:8890",
		"127.0.0.1:8890", "/run/m.sock", "inet:8890", "inet::8890", "inet:8890@", "inet:127.0.0.1:x", "inet:1@[::1",
		"inet:127.0.0.1:70000", "unix:", "unix:run/m.sock", "tcp:127.0.0.1:1", "inet:[fe80::1%eth0]:25", "inet:0x1f@h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSocket(spec)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(spec)) || !strings.Contains(msg, socketspec.Forms) {
				t.Fatalf("ParseSocket(%q): error %q does not name the spec and the forms", spec, msg)
			}
			return
		}
		switch s.Network {
		case "unix":
			if !strings.HasPrefix(s.Address, "/") {
				t.Fatalf("ParseSocket(%q) = %+v: relative path", spec, s)
			}
		case "tcp", "tcp6":
			host, port, err := net.SplitHostPort(s.Address)
			n, perr := strconv.Atoi(port)
			if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				t.Fatalf("ParseSocket(%q) = %+v: not HOST:PORT with a port 1..65535", spec, s)
			}
		default:
			t.Fatalf("ParseSocket(%q) = %+v: unknown network", spec, s)
		}
		again, err := ParseSocket(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseSocket(%q) = %+v, but its String %q parses to %+v, %v", spec, s, s.String(), again, err)
		}
	})
}
