package milter

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/internal/socketspec"
	"github.com/rblmilter/rblmilter/internal/socketspec/socketspectest"
)

// The daemon reads socket specs by the rules milterbench uses too: the
// shared table of cases keeps them in step.
func TestParseSocket(t *testing.T) {
	socketspectest.Check(t, false, func(spec string) (socketspec.Spec, error) {
		s, err := ParseSocket(spec)
		return socketspec.Spec(s), err
	})
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
