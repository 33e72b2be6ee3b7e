package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// inProcessDaemon runs runDaemon in a goroutine with signals sent by the
// test.
type inProcessDaemon struct {
	log     *logWatch
	signals chan os.Signal
	exit    chan int
	sock    string
}

func startInProcess(t *testing.T, configPath, sock string) *inProcessDaemon {
	t.Helper()
	var stdout bytes.Buffer
	d := &inProcessDaemon{
		log:     newLogWatch(),
		signals: make(chan os.Signal, 1),
		exit:    make(chan int, 1),
		sock:    sock,
	}
	env := testEnv(t, &stdout, nil)
	env.stderr = d.log
	env.signals = func() (<-chan os.Signal, func()) { return d.signals, func() {} }
	go func() { d.exit <- run(t.Context(), []string{"-config", configPath}, env) }()
	t.Cleanup(func() {
		select {
		case d.signals <- syscall.SIGTERM:
			<-d.exit
		case <-d.exit:
		}
	})
	select {
	case code := <-d.exit:
		t.Fatalf("daemon exited with %d at start:\n%s", code, d.log)
	case <-waitLine(d.log, "msg=listening"):
	case <-time.After(waitTimeout):
		t.Fatalf("daemon not listening after %v:\n%s", waitTimeout, d.log)
	}
	return d
}

// waitLine returns a channel closed once a line with part is logged.
func waitLine(w *logWatch, part string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for {
			w.mu.Lock()
			for _, l := range w.lines {
				if strings.Contains(l, part) {
					w.mu.Unlock()
					close(done)
					return
				}
			}
			changed := w.changed
			w.mu.Unlock()
			<-changed
		}
	}()
	return done
}

func (d *inProcessDaemon) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	d.signals <- sig
	select {
	case code := <-d.exit:
		d.exit <- code // for Cleanup
		return code
	case <-time.After(waitTimeout):
		t.Fatalf("daemon did not stop on %v:\n%s", sig, d.log)
		return -1
	}
}

func isReject(act *gomilter.Action) bool {
	return act.Code == gomilter.ActReplyCode && act.SMTPCode == 554
}

func TestDaemonReloadAndShutdownInProcess(t *testing.T) {
	dns := newDNSBL(t, "192.0.2.1")
	cfg, sock := unixConfig(t, t.TempDir(), dns, "")
	d := startInProcess(t, cfg, sock)

	act := connectAs(t, "unix", sock, "192.0.2.1")
	if !isReject(act) || !strings.Contains(act.SMTPText, "blocked using bl.test; listed for testing") {
		t.Fatalf("listed client: %+v", act)
	}
	if act := connectAs(t, "unix", sock, "192.0.2.2"); act.Code != gomilter.ActAccept {
		t.Fatalf("clean client: %+v", act)
	}
	d.log.wait(t, "msg=decision", "ip=192.0.2.1", "decision=reject")

	metrics := "http://" + d.log.addr(t, "metrics listening")
	if code, body := testutil.Get(t, nil, metrics+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := testutil.Get(t, nil, metrics+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := testutil.Get(t, nil, metrics+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ answers %d while pprof is off", code)
	}
	_, body := testutil.Get(t, nil, metrics+"/metrics")
	for _, want := range []string{
		"rblmilter_config_last_reload_successful 1",
		`rblmilter_build_info{version="dev"} 1`,
		`rblmilter_decisions_total{action="reject",result="reject",stage="connect"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A good reload: threshold 2 lets the listed client (score 1) in.
	writeConfig(t, cfg, dns, "unix:"+sock, "threshold = 2")
	d.signals <- syscall.SIGHUP
	d.log.wait(t, "msg=\"config reloaded\"")
	if act := connectAs(t, "unix", sock, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Fatalf("after reload to threshold 2, listed client: %+v", act)
	}

	// A broken reload: every problem is logged, the running config stays.
	if err := os.WriteFile(cfg, []byte("threshold = \"x\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.signals <- syscall.SIGHUP
	d.log.wait(t, "level=ERROR", `msg="keeping the previous config"`)
	for _, want := range []string{`problem="threshold: \"x\" is not a number"`, `problem="bogus: unknown key"`} {
		if d.log.count("level=ERROR", "config reload failed", want) != 1 {
			t.Errorf("reload error %s not logged:\n%s", want, d.log)
		}
	}
	if act := connectAs(t, "unix", sock, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Fatalf("after a failed reload, threshold 2 must still hold: %+v", act)
	}
	if _, body := testutil.Get(t, nil, metrics+"/metrics"); !strings.Contains(body, "rblmilter_config_last_reload_successful 0") {
		t.Error("failed reload not visible in rblmilter_config_last_reload_successful")
	}

	// A good config again, with a restart-only change: applied except for
	// that, which is named in a warning.
	// log.level applies at once: at warn, decisions are no longer logged.
	// The restart warning is logged after the new level and policy are in
	// force, so it is the point to wait for.
	writeConfig(t, cfg, dns, "unix:"+sock, "threshold = 1\n[cache]\nsize = 10\n[log]\nlevel = \"warn\"")
	d.signals <- syscall.SIGHUP
	d.log.wait(t, "level=WARN", "needs a restart", "key=cache")
	decisions := d.log.count("msg=decision")
	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Fatalf("after reload to threshold 1, listed client: %+v", act)
	}
	if n := d.log.count("msg=decision"); n != decisions {
		t.Errorf("decision logged at log.level = warn")
	}

	if code := d.stop(t, os.Interrupt); code != 0 {
		t.Errorf("exit %d on SIGINT, want 0", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestDaemonStartFailsOnBadConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-config", "testdata/invalid-many.toml"}, testEnv(t, &stdout, &stderr))
	if code != 1 || !strings.Contains(stderr.String(), `testdata/invalid-many.toml: action: "drop" is not one of`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

func TestDaemonStartFailsWhenListenIsTaken(t *testing.T) {
	dns := newDNSBL(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	first := filepath.Join(dir, "first.toml")
	writeConfig(t, first, dns, "unix:"+sock, "")
	startInProcess(t, first, sock)

	env, log := watchedEnv(t)
	if code := run(t.Context(), []string{"-config", first}, env); code != 1 {
		t.Errorf("second daemon on the same socket: exit %d, want 1", code)
	}
	log.wait(t, "level=ERROR", "in use by another process")
}

// The drain deadline closes a session that does not finish, and the daemon
// still exits 0.
func TestDaemonDrainDeadline(t *testing.T) {
	dns := newDNSBL(t)
	release := make(chan struct{})
	defer close(release)
	dns.list("192.0.2.9", rbltest.Hold(release))
	cfg, sock := unixConfig(t, t.TempDir(), dns, `drain_timeout = "50ms"
timeout = "30s"`)
	d := startInProcess(t, cfg, sock)

	result := make(chan error, 1)
	go func() {
		_, err := tryConnect("unix", sock, "192.0.2.9")
		result <- err
	}()
	dns.WaitQueries(t, dns.queryName("192.0.2.9"), 1)
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if err := <-result; err == nil {
		t.Error("the held session got an answer; it should have been closed at the drain deadline")
	}
	d.log.wait(t, "drain timeout reached")
}

// binaryDaemon is the built rblmilter running as a child process.
type binaryDaemon struct {
	cmd  *exec.Cmd
	log  *logWatch
	done chan error
}

func startBinary(t *testing.T, configPath string) *binaryDaemon {
	t.Helper()
	b := startCommand(t, exec.Command(rblmilterBinary(t), "-config", configPath))
	select {
	case err := <-b.done:
		b.done <- err
		t.Fatalf("rblmilter exited at start (%v):\n%s", err, b.log)
	case <-waitLine(b.log, "msg=listening"):
	case <-time.After(waitTimeout):
		t.Fatalf("rblmilter not listening after %v:\n%s", waitTimeout, b.log)
	}
	return b
}

// startCommand starts cmd (the daemon, possibly wrapped), collects its
// log, and kills it when the test ends.
func startCommand(t *testing.T, cmd *exec.Cmd) *binaryDaemon {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &binaryDaemon{cmd: cmd, log: newLogWatch(), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		lineScanner(stderr, b.log)
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
	})
	return b
}

func (b *binaryDaemon) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop ends the daemon with SIGTERM, as an init system does, and fails
// the test unless it exits 0.
func (b *binaryDaemon) stop(t *testing.T) {
	t.Helper()
	b.signal(t, syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Errorf("exit %d:\n%s", code, b.log)
	}
}

// wait returns the exit code once the process has ended.
func (b *binaryDaemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			t.Fatal(err)
		}
		return 0
	case <-time.After(waitTimeout):
		t.Fatalf("rblmilter did not exit:\n%s", b.log)
		return -1
	}
}

// Real signals to the real binary: SIGHUP with a good and a bad file, then
// SIGTERM while a session waits for DNS: the session gets its verdict,
// new connections are refused, the exit code is 0.
func TestBinarySignals(t *testing.T) {
	dns := newDNSBL(t, "192.0.2.1")
	release := make(chan struct{})
	dns.list("192.0.2.9", rbltest.Hold(release))
	// Started by root, the daemon runs as nobody: the config must be
	// readable to nobody for SIGHUP.
	cfg, sock := unixConfig(t, readableTempDir(t), dns, `timeout = "30s"`)
	b := startBinary(t, cfg)

	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Fatalf("listed client: %+v", act)
	}

	writeConfig(t, cfg, dns, "unix:"+sock, "timeout = \"30s\"\naction = \"log\"")
	b.signal(t, syscall.SIGHUP)
	b.log.wait(t, `msg="config reloaded"`)
	if act := connectAs(t, "unix", sock, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Fatalf("action = log must accept: %+v", act)
	}
	b.log.wait(t, "msg=decision", "ip=192.0.2.1", "decision=reject", "action=log")

	if err := os.WriteFile(cfg, []byte(`action = "drop"`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.signal(t, syscall.SIGHUP)
	b.log.wait(t, "level=ERROR", `problem="action: \"drop\" is not one of reject, tempfail, tag, log"`)
	b.log.wait(t, `msg="keeping the previous config"`)
	if act := connectAs(t, "unix", sock, "192.0.2.1"); act.Code != gomilter.ActAccept {
		t.Fatalf("after a bad reload, action = log must still hold: %+v", act)
	}

	// Back to reject, then drain with one session in flight.
	writeConfig(t, cfg, dns, "unix:"+sock, `timeout = "30s"`)
	b.signal(t, syscall.SIGHUP)
	b.log.waitN(t, 2, `msg="config reloaded"`)

	type answer struct {
		act *gomilter.Action
		err error
	}
	inFlight := make(chan answer, 1)
	go func() {
		act, err := tryConnect("unix", sock, "192.0.2.9")
		inFlight <- answer{act, err}
	}()
	dns.WaitQueries(t, dns.queryName("192.0.2.9"), 1)
	b.signal(t, syscall.SIGTERM)
	b.log.wait(t, `msg="shutting down"`, "signal=terminated")
	waitRefused(t, "unix", sock)
	if _, err := tryConnect("unix", sock, "192.0.2.1"); err == nil {
		t.Error("a new session was accepted while draining")
	}
	close(release)
	got := <-inFlight
	if got.err != nil || !isReject(got.act) {
		t.Errorf("in-flight session: %+v, %v; want its 554", got.act, got.err)
	}
	if code := b.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, b.log)
	}
	b.log.wait(t, "msg=stopped")
}

// Started as root with user = "nobody", the daemon binds, then drops to
// nobody's uid and gid.
func TestBinaryDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := lookupUser("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	dns := newDNSBL(t)
	cfg, sock := unixConfig(t, t.TempDir(), dns, `user = "nobody"
socket_mode = "0666"`)
	b := startBinary(t, cfg)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Join(strings.Fields(v), " ")
		}
		if v, ok := strings.CutPrefix(line, "Gid:"); ok {
			gid = strings.Join(strings.Fields(v), " ")
		}
	}
	if uid != "65534 65534 65534 65534" || gid != "65534 65534 65534 65534" {
		t.Errorf("Uid %q Gid %q, want all 65534 (nobody/nogroup)", uid, gid)
	}
	if act := connectAs(t, "unix", sock, "192.0.2.2"); act.Code != gomilter.ActAccept {
		t.Errorf("after dropping privileges: %+v", act)
	}
	b.stop(t)
}

// Cancelling run's context stops the daemon like SIGTERM (for embedding
// and tests).
func TestDaemonStopsWhenContextIsCancelled(t *testing.T) {
	dns := newDNSBL(t)
	cfg, _ := unixConfig(t, t.TempDir(), dns, "")
	env, log := watchedEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"-config", cfg}, env) }()
	log.wait(t, "msg=listening")
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	case <-time.After(waitTimeout):
		t.Fatal("daemon ignored the cancelled context")
	}
	log.wait(t, `msg="shutting down"`, `signal="context cancelled"`)
}

// TestBinaryRoutesLibraryLogsThroughItsLogger: go-milter reports broken
// sessions with the log package; the daemon must turn those into records
// of its own log format rather than stray unstructured lines.
func TestBinaryRoutesLibraryLogsThroughItsLogger(t *testing.T) {
	dns := newDNSBL(t, "192.0.2.1")
	cfg, sock := unixConfig(t, readableTempDir(t), dns, "")
	b := startBinary(t, cfg)

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A packet with an unknown command code: go-milter logs it and hangs up.
	if _, err := c.Write([]byte{0, 0, 0, 1, 'Z'}); err != nil {
		t.Fatal(err)
	}
	b.log.wait(t, "level=INFO", `msg="Unrecognized command code: Z"`)
}
