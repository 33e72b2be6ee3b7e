//go:build integration && linux

package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// supervisorProgram is contrib/supervisord/rblmilter.conf with command, user
// and log file set to the test's own. Every other line stays as shipped.
func supervisorProgram(t testing.TB, command, user, logFile string) string {
	t.Helper()
	return setProgramOptions(t, "contrib/supervisord/rblmilter.conf", readContrib(t, "supervisord/rblmilter.conf"),
		map[string]string{"command": command, "user": user, "stdout_logfile": logFile})
}

// setProgramOptions sets options of a supervisord program file, each of
// which the file (named by what) must set exactly once.
func setProgramOptions(t testing.TB, what, program string, set map[string]string) string {
	t.Helper()
	seen := map[string]int{}
	var out []string
	for _, line := range strings.Split(program, "\n") {
		key, _, ok := strings.Cut(line, "=")
		if value, replace := set[strings.TrimSpace(key)]; ok && replace && !strings.HasPrefix(line, ";") {
			line = strings.TrimSpace(key) + "=" + value
			seen[strings.TrimSpace(key)]++
		}
		out = append(out, line)
	}
	for key := range set {
		if seen[key] != 1 {
			t.Fatalf("%s sets %s %d times, want exactly once", what, key, seen[key])
		}
	}
	return strings.Join(out, "\n")
}

// supervisor is a private supervisord (own config, socket, pid and log
// files) running in the foreground.
type supervisor struct {
	proc    *process
	conf    string
	log     string
	ctlPath string
}

// startSupervised starts supervisord with the rblmilter program that
// program makes for a daemon logging to dir/rblmilter.log, waits until the
// daemon answers /readyz on metrics, and returns supervisord, the daemon
// (name in messages) and its PID.
func startSupervised(t *testing.T, dir, name, metrics string, program func(daemonLog string) string) (*supervisor, *rblmilterDaemon, int) {
	t.Helper()
	daemonLog := filepath.Join(dir, "rblmilter.log")
	s := startSupervisord(t, dir, program(daemonLog))
	t.Cleanup(func() {
		if t.Failed() {
			dumpLog(t, name, daemonLog)
		}
	})
	d := &rblmilterDaemon{process: &process{name: name, logPath: daemonLog}, metrics: metrics, dial: hostDialer{}}
	pid := s.runningPID(t, 0)
	waitFor(t, startTimeout, name+" /readyz", d.ready)
	return s, d, pid
}

func startSupervisord(t testing.TB, dir, program string) *supervisor {
	t.Helper()
	cmds := requireCommands(t, "supervisord", "supervisorctl")
	s := &supervisor{conf: filepath.Join(dir, "supervisord.conf"), log: filepath.Join(dir, "supervisord.log"), ctlPath: cmds["supervisorctl"]}
	writeFile(t, filepath.Join(dir, "conf.d", "rblmilter.conf"), program)
	writeFile(t, s.conf, fmt.Sprintf(`; Private supervisord of rblmilter's integration tests.
[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700

[supervisord]
user=root
nodaemon=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock

[include]
files = %[1]s/conf.d/*.conf
`, dir))
	// supervisord stops its programs (SIGTERM, stopwaitsecs) when it gets
	// SIGTERM itself; give it longer than that.
	s.proc = startProcess(t, "supervisord", filepath.Join(dir, "supervisord.out"), nil,
		cmds["supervisord"], "-c", s.conf)
	t.Cleanup(func() {
		s.proc.stop(t, 30*time.Second)
		if t.Failed() {
			dumpLog(t, "supervisord", s.log)
		}
	})
	return s
}

// ctl runs supervisorctl with the private config.
func (s *supervisor) ctl(args ...string) (string, error) {
	return runErr(append([]string{s.ctlPath, "-c", s.conf}, args...)...)
}

var runningRE = regexp.MustCompile(`(?m)^rblmilter\s+RUNNING\s+pid (\d+),`)

// runningPID waits until supervisorctl reports rblmilter RUNNING with a PID
// other than not, and returns it.
func (s *supervisor) runningPID(t testing.TB, not int) int {
	t.Helper()
	var pid int
	waitFor(t, startTimeout, "supervisorctl to report rblmilter RUNNING", func() error {
		if s.proc.exited() {
			t.Fatalf("%v", s.proc.exitError())
		}
		out, _ := s.ctl("status", "rblmilter")
		m := runningRE.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("status: %s", strings.TrimSpace(out))
		}
		pid, _ = strconv.Atoi(m[1])
		if pid == not {
			return fmt.Errorf("still the old pid %d", pid)
		}
		return nil
	})
	return pid
}

// TestSupervisord runs rblmilter under supervisord with the program section
// of contrib/supervisord/rblmilter.conf: supervisord starts it as an
// unprivileged user, restarts it when it is killed, and `supervisorctl
// stop` lets it drain and exit 0 within stopwaitsecs.
func TestSupervisord(t *testing.T) {
	requireRoot(t)
	requireCommands(t, "supervisord", "supervisorctl", "rbldnsd")
	bin := requireRblmilter(t)
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, freePort(t, "udp", "127.0.0.1"), hostDialer{})
	metrics := hostPort("127.0.0.1", freePort(t, "tcp", "127.0.0.1"))
	cfg := filepath.Join(dir, "rblmilter.toml")
	writeFile(t, cfg, milterConfig(milterOptions{
		Listen: fmt.Sprintf("inet:127.0.0.1:%d", freePort(t, "tcp", "127.0.0.1")),
		Stage:  "connect", Action: "reject", DNS: dns.addr, Metrics: metrics,
	}))
	s, d, pid := startSupervised(t, dir, "rblmilter (supervised)", metrics, func(daemonLog string) string {
		return supervisorProgram(t, bin+" -config "+cfg, "nobody", daemonLog)
	})
	if uid := processUID(t, pid); uid != 65534 {
		t.Errorf("rblmilter runs as uid %d, want nobody (65534) as the program file's user= says", uid)
	}

	t.Run("killed daemon is restarted", func(t *testing.T) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		newPID := s.runningPID(t, pid)
		waitFor(t, startTimeout, "restarted rblmilter /readyz", d.ready)
		t.Logf("killed pid %d, supervisord restarted it as pid %d", pid, newPID)
		pid = newPID
	})

	t.Run("stop drains and exits 0", func(t *testing.T) {
		out, err := s.ctl("stop", "rblmilter")
		if err != nil || !strings.Contains(out, "rblmilter: stopped") {
			t.Fatalf("supervisorctl stop rblmilter: %v\n%s", err, out)
		}
		waitFor(t, 10*time.Second, "supervisord to log the stop", func() error {
			log := readText(t, s.log)
			if strings.Contains(log, "stopped: rblmilter (exit status 0)") {
				return nil
			}
			return fmt.Errorf("no \"stopped: rblmilter (exit status 0)\" in %s", s.log)
		})
		// supervisord logs "killing 'rblmilter' (PID) with SIGKILL" when
		// stopwaitsecs runs out.
		if log := readText(t, s.log); strings.Contains(log, "killing 'rblmilter'") {
			t.Errorf("supervisord had to kill rblmilter after stopwaitsecs:\n%s", log)
		}
		if log := readText(t, d.process.logPath); !strings.Contains(log, `"msg":"shutting down"`) {
			t.Errorf("rblmilter did not log its drain on SIGTERM")
		}
		if processAlive(pid) {
			t.Errorf("rblmilter pid %d still runs after supervisorctl stop", pid)
		}
	})
}

// processUID is the real user ID of pid.
func processUID(t testing.TB, pid int) int {
	t.Helper()
	for _, line := range strings.Split(readText(t, fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				uid, _ := strconv.Atoi(f[0])
				return uid
			}
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return -1
}
