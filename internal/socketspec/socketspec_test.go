package socketspec_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rblmilter/rblmilter/internal/socketspec"
	"github.com/rblmilter/rblmilter/internal/socketspec/socketspectest"
)

func TestParse(t *testing.T)       { socketspectest.Check(t, false, socketspec.Parse) }
func TestParseListen(t *testing.T) { socketspectest.Check(t, true, socketspec.ParseListen) }

// Every accepted spec survives a round trip through String.
func TestStringRoundTrip(t *testing.T) {
	for _, c := range socketspectest.Cases {
		s, err := socketspec.ParseListen(c.Spec)
		if err != nil {
			continue
		}
		if again, err := socketspec.ParseListen(s.String()); err != nil || again != s {
			t.Errorf("%q parses to %+v, but its String %q to %+v, %v", c.Spec, s, s.String(), again, err)
		}
	}
}

// RemoveStale clears a socket nobody answers on, and nothing else: not a
// live socket, not a regular file.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.sock")
	if err := socketspec.RemoveStale(path); err != nil {
		t.Errorf("nothing at the path: %v", err)
	}

	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := socketspec.RemoveStale(path); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("live socket: %v, want a refusal", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket no longer answers: %v", err)
	} else {
		c.Close()
	}
	live.(*net.UnixListener).SetUnlinkOnClose(false)
	live.Close() // a crashed daemon's socket file stays behind
	if err := socketspec.RemoveStale(path); err != nil {
		t.Errorf("stale socket: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("stale socket still there: %v", err)
	}

	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := socketspec.RemoveStale(path); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("regular file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Error("regular file was changed")
	}
}
