//go:build integration && linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// rblmilterBin is the daemon built from ./cmd/rblmilter for this run.
var rblmilterBin string

// buildErr is why the build failed; each test that needs the binary
// reports it.
var buildErr error

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rblmilter-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The daemon drops privileges; its binary must stay reachable.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rblmilterBin, buildErr = buildRblmilter(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildRblmilter builds ./cmd/rblmilter into dir. When the tests run with
// -race, the daemon is built with -race too, so a data race that only the
// real MTAs trigger still shows (and, with GORACE=halt_on_error=1, ends
// the daemon with a failure the tests see).
func buildRblmilter(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building rblmilter needs the go command: %w", err)
	}
	out := filepath.Join(dir, "rblmilter")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/rblmilter")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = ".." // the module root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v: %v\n%s", args, err, b)
	}
	return out, nil
}

// requireRblmilter fails the test when the daemon did not build.
func requireRblmilter(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/rblmilter: %v", buildErr)
	}
	return rblmilterBin
}
