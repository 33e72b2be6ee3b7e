//go:build integration && linux

package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// pollInterval is how often the tests re-check a condition they wait for.
const pollInterval = 25 * time.Millisecond

// startTimeout bounds how long any started program may take to be ready.
const startTimeout = 30 * time.Second

// missing skips the test with a message saying what is missing, or fails it
// when CI is set: in CI the suite must really run.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (./scripts/test.sh installs what the integration tests need)"
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, so this cannot be skipped: %s", msg)
	}
	t.Skip(msg)
}

// requireRoot stops the test unless it runs as root, which the tests need
// to run MTAs, drop privileges and create network namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "integration tests need root (MTAs, privilege drop, network namespaces); running as uid %d", os.Geteuid())
	}
}

// requireCommands looks up each program in PATH and in the sbin
// directories (which a non-login root shell may lack) and returns their
// paths by name.
func requireCommands(t testing.TB, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var absent []string
	for _, name := range names {
		p, err := lookCommand(name)
		if err != nil {
			absent = append(absent, name)
			continue
		}
		paths[name] = p
	}
	if len(absent) > 0 {
		missing(t, "missing programs: %s", strings.Join(absent, ", "))
	}
	return paths
}

func lookCommand(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// waitFor calls cond every pollInterval until it returns nil or timeout
// passes, and fails the test with cond's last error then.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testutil.Poll(timeout, pollInterval, cond); err != nil {
		t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
}

// sharedDir returns a fresh temporary directory that unprivileged daemons
// (postfix, rbldns, nobody) can enter: testing's own are mode 0700.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeFile writes a file readable by everyone (daemons read it after
// dropping privileges), creating its directory.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a port ("tcp" or "udp") that was free on host a moment
// ago. The small window until a daemon binds it is harmless here.
func freePort(t testing.TB, network, host string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// process is a program the test started. It runs in its own process
// group, its output goes to a log file, and it is stopped by PID when the
// test ends, failed or not.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	// waitErr is cmd.Wait's result, valid once done is closed.
	waitErr error
}

// startProcess starts argv with stdout and stderr going to logPath and
// registers its stop with t.Cleanup.
func startProcess(t testing.TB, name, logPath string, env []string, argv ...string) *process {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	// Own process group, so stop reaches forked children too. Pdeathsig:
	// should the test binary die without running its cleanups (a -timeout
	// panic), the kernel kills the program with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t, 10*time.Second)
		if t.Failed() {
			dumpLog(t, name, logPath)
		}
	})
	return p
}

// pid is the process ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, for failure messages.
func (p *process) exitError() error {
	if !p.exited() {
		return nil
	}
	if p.waitErr == nil {
		return fmt.Errorf("%s exited with status 0", p.name)
	}
	return fmt.Errorf("%s ended: %w", p.name, p.waitErr)
}

// signal sends sig to the process (its PID, not its group).
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("%s already ended", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// wait waits up to timeout for the process to end; once it has, err is
// cmd.Wait's result.
func (p *process) wait(timeout time.Duration) (ended bool, err error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(timeout):
		return false, nil
	}
}

// stop sends SIGTERM to the program and its process group (which holds
// any children it forked, such as Sendmail's per-connection processes),
// waits for the program to end, and SIGKILLs them after grace.
func (p *process) stop(t testing.TB, grace time.Duration) {
	pid := p.pid()
	if !p.exited() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		if ended, _ := p.wait(grace); !ended {
			t.Logf("%s (pid %d) ignored SIGTERM for %v; killing it", p.name, pid, grace)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children that outlived the program (same process group) go too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// dumpLog logs the tail of a log file, so a failure shows what the
// programs said.
func dumpLog(t testing.TB, name, path string) {
	t.Helper()
	lines, err := tailLines(path, 60)
	if err != nil {
		t.Logf("%s log %s: %v", name, path, err)
		return
	}
	t.Logf("---- last lines of %s log %s ----\n%s", name, path, strings.Join(lines, "\n"))
}

func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, sc.Err()
}

// run runs a short command and fails the test, showing its output, when it
// does not exit 0.
func run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := runErr(argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// runErr runs a short command with a deadline and returns its combined
// output.
func runErr(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return string(out), err
}

// pidFromFile reads a PID file as daemons that fork themselves write it.
func pidFromFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	return strconv.Atoi(fields[0])
}

// processAlive reports whether pid exists (and is not a zombie we reaped).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// readText reads a whole (log) file.
func readText(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
