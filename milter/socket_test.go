package milter

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSocket(t *testing.T) {
	good := map[string]SocketSpec{
		"inet:127.0.0.1:8890":   {"tcp", "127.0.0.1:8890"},
		"inet:localhost:8890":   {"tcp", "localhost:8890"},
		"inet:8890@127.0.0.1":   {"tcp", "127.0.0.1:8890"},
		"inet:8890@localhost":   {"tcp", "localhost:8890"},
		"inet6:8890@[::1]":      {"tcp6", "[::1]:8890"},
		"inet6:8890@::1":        {"tcp6", "[::1]:8890"},
		"inet6:[::1]:8890":      {"tcp6", "[::1]:8890"},
		"inet:[::1]:8890":       {"tcp", "[::1]:8890"},
		"unix:/run/rbl/m.sock":  {"unix", "/run/rbl/m.sock"},
		"local:/run/rbl/m.sock": {"unix", "/run/rbl/m.sock"},
		"INET:0.0.0.0:8890":     {"tcp", "0.0.0.0:8890"},
	}
	for spec, want := range good {
		got, err := ParseSocket(spec)
		if err != nil || got != want {
			t.Errorf("ParseSocket(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	bad := map[string]string{
		"127.0.0.1:8890":       `unknown type "127.0.0.1"`,
		"/run/m.sock":          "missing type prefix",
		"inet:8890":            "want HOST:PORT or PORT@HOST",
		"inet::8890":           "missing host",
		"inet:8890@":           "missing host",
		"inet:127.0.0.1:x":     `port "x" is not a number from 1 to 65535`,
		"inet:127.0.0.1:70000": `port "70000" is not a number from 1 to 65535`,
		"unix:":                "empty path",
		"unix:run/m.sock":      "path must be absolute",
		"tcp:127.0.0.1:1":      `unknown type "tcp"`,
	}
	for spec, want := range bad {
		_, err := ParseSocket(spec)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"`+spec+`"`) {
			t.Errorf("ParseSocket(%q) error = %v, want it to name the spec and say %q", spec, err, want)
		}
	}
}

func TestListenUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.sock")
	spec := SocketSpec{Network: "unix", Address: path}

	ln, err := Listen(spec, SocketOptions{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	// A live socket is never taken over.
	if _, err := Listen(spec, SocketOptions{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	ln.Close()

	// A stale socket file (daemon killed) is removed.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen(spec, SocketOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o660 {
		t.Errorf("default mode = %v, want 0660", fi.Mode().Perm())
	}
	ln.Close()

	// A regular file is never deleted.
	if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(spec, SocketOptions{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Error("regular file was changed")
	}
	if _, err := Listen(SocketSpec{Network: "unix", Address: filepath.Join(dir, "x.sock")}, SocketOptions{Group: "no-such-group-rblmilter"}); err == nil || !strings.Contains(err.Error(), `socket_group "no-such-group-rblmilter"`) {
		t.Errorf("unknown group: %v", err)
	}
}
