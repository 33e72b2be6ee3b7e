package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/internal/socketspec"
	"github.com/rblmilter/rblmilter/internal/socketspec/socketspectest"
)

// milterbench reads socket specs by the daemon's rules: the table shared
// with milter's tests keeps them in step.
func TestSocketSpecsAsTheDaemonReadsThem(t *testing.T) {
	t.Run("target", func(t *testing.T) { socketspectest.Check(t, false, socketspec.Parse) })
	t.Run("listener", func(t *testing.T) { socketspectest.Check(t, true, socketspec.ParseListen) })
}

// Like the daemon, milterbench replaces a stale socket but never takes a
// live one over, nor a file that is not a socket.
func TestListenSocketReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "m.sock")
	spec := socketspec.Spec{Network: "unix", Address: sock}
	ln, err := listenSocket(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenSocket(spec); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("listening over a live socket: error %v, want a refusal", err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("the live socket no longer answers: %v", err)
	} else {
		c.Close()
	}
	// Simulate a killed process: the socket file stays behind.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = listenSocket(spec)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()

	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenSocket(socketspec.Spec{Network: "unix", Address: file}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listening over a regular file: error %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("regular file was overwritten")
	}
}
