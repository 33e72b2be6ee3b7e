// Package socketspectest holds the table of socket specs that the daemon's
// parser (milter.ParseSocket), milterbench's and package socketspec itself
// are tested against, so that the three cannot drift apart.
package socketspectest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// Case is one spec and what the rules make of it.
type Case struct {
	Spec string
	// Want is the parsed spec when it is accepted.
	Want socketspec.Spec
	// Err, when set, is part of the message refusing Spec.
	Err string
	// ListenWant, when set, is what a listener's parser (ParseListen)
	// makes of a spec that Parse refuses with Err: port 0.
	ListenWant socketspec.Spec
}

func tcp(addr string) socketspec.Spec  { return socketspec.Spec{Network: "tcp", Address: addr} }
func tcp6(addr string) socketspec.Spec { return socketspec.Spec{Network: "tcp6", Address: addr} }
func unix(path string) socketspec.Spec { return socketspec.Spec{Network: "unix", Address: path} }

// Cases are Postfix's and Sendmail's forms, in upper and lower case, and
// the mistakes admins make with them.
var Cases = []Case{
	{Spec: "inet:127.0.0.1:8890", Want: tcp("127.0.0.1:8890")},
	{Spec: "inet:localhost:8890", Want: tcp("localhost:8890")},
	{Spec: "inet:8890@127.0.0.1", Want: tcp("127.0.0.1:8890")},
	{Spec: "inet:8890@localhost", Want: tcp("localhost:8890")},
	{Spec: "inet6:8890@[::1]", Want: tcp6("[::1]:8890")},
	{Spec: "inet6:8890@::1", Want: tcp6("[::1]:8890")},
	{Spec: "inet6:[::1]:8890", Want: tcp6("[::1]:8890")},
	{Spec: "inet:[::1]:8890", Want: tcp("[::1]:8890")},
	{Spec: "inet:[fe80::1%eth0]:25", Want: tcp("[fe80::1%eth0]:25")},
	{Spec: "INET:0.0.0.0:8890", Want: tcp("0.0.0.0:8890")},
	{Spec: "INET:localhost:25", Want: tcp("localhost:25")},
	{Spec: "unix:/run/rbl/m.sock", Want: unix("/run/rbl/m.sock")},
	{Spec: "local:/run/rbl/m.sock", Want: unix("/run/rbl/m.sock")},

	{Spec: "inet:0@127.0.0.1", Err: `port "0" is not a number from 1 to 65535`, ListenWant: tcp("127.0.0.1:0")},
	{Spec: "inet:127.0.0.1:0", Err: `port "0" is not a number from 1 to 65535`, ListenWant: tcp("127.0.0.1:0")},

	{Spec: "127.0.0.1:8890", Err: `unknown type "127.0.0.1"`},
	{Spec: "tcp:127.0.0.1:1", Err: `unknown type "tcp"`},
	{Spec: "/run/m.sock", Err: "missing type prefix"},
	{Spec: "inet:8890", Err: "want HOST:PORT or PORT@HOST"},
	{Spec: "inet::8890", Err: "missing host"},
	{Spec: "inet:8890@", Err: "missing host"},
	{Spec: "inet:8890@127.0.0.1/24", Err: `host "127.0.0.1/24" is not an IP address or host name`},
	{Spec: "inet:@host", Err: `port "" is not a number from`},
	{Spec: "inet:127.0.0.1:x", Err: `port "x" is not a number from`},
	{Spec: "inet:127.0.0.1:http", Err: `port "http" is not a number from`},
	{Spec: "inet:127.0.0.1:70000", Err: `port "70000" is not a number from`},
	{Spec: "inet:70000@host", Err: `port "70000" is not a number from`},
	{Spec: "unix:", Err: "empty path"},
	{Spec: "unix:run/m.sock", Err: "path must be absolute"},
}

// Check runs parse against every case: with listen, as a listener's
// parser, which also takes port 0. Every refusal must quote the spec and
// list the forms that work.
func Check(t *testing.T, listen bool, parse func(string) (socketspec.Spec, error)) {
	t.Helper()
	for _, c := range Cases {
		want, wantErr := c.Want, c.Err
		if listen && c.ListenWant != (socketspec.Spec{}) {
			want, wantErr = c.ListenWant, ""
		}
		got, err := parse(c.Spec)
		switch {
		case wantErr == "":
			if err != nil || got != want {
				t.Errorf("%q: got %+v, %v; want %+v", c.Spec, got, err, want)
			}
		case err == nil:
			t.Errorf("%q: accepted as %+v; want an error saying %q", c.Spec, got, wantErr)
		default:
			msg := err.Error()
			if !strings.Contains(msg, wantErr) || !strings.Contains(msg, strconv.Quote(c.Spec)) || !strings.Contains(msg, socketspec.Forms) {
				t.Errorf("%q: error %q; want it to quote the spec, say %q and list the forms", c.Spec, msg, wantErr)
			}
		}
	}
}
