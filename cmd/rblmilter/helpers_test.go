package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/rblmilter/rblmilter/internal/testutil"
	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

// waitTimeout bounds every wait for the daemon; it is a deadline, never a
// sleep.
const waitTimeout = 20 * time.Second

var buildDir string

// raceEnabled is set by race_test.go when the tests run with -race, so the
// binary under test is built with it too.
var raceEnabled bool

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// rblmilterBinary builds the command once per test run (with -race when
// the tests run with it) and returns its path.
func rblmilterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rblmilter-test-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "rblmilter")
		args := []string{"build", "-o", binary, "-ldflags", "-X main.version=v0.0.0-test -X main.revision=0123456789ab-dirty"}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// logWatch collects log lines and lets tests wait for one.
type logWatch struct {
	mu      sync.Mutex
	buf     []byte
	lines   []string
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// count returns how many lines contain every one of parts.
func (w *logWatch) count(parts ...string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range w.lines {
		if testutil.ContainsAll(l, parts...) {
			n++
		}
	}
	return n
}

// wait blocks until the n-th line containing every one of parts has been
// logged, and returns it.
func (w *logWatch) waitN(t *testing.T, n int, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		seen := 0
		for _, l := range w.lines {
			if testutil.ContainsAll(l, parts...) {
				seen++
				if seen == n {
					w.mu.Unlock()
					return l
				}
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no log line #%d with %q within %v; log:\n%s", n, parts, waitTimeout, w)
		}
	}
}

func (w *logWatch) wait(t *testing.T, parts ...string) string {
	t.Helper()
	return w.waitN(t, 1, parts...)
}

var addrAttr = regexp.MustCompile(`addr=(\S+)`)

// listeningAddr waits for the daemon's "listening" (or "metrics listening")
// line and returns its address.
func (w *logWatch) addr(t *testing.T, msg string) string {
	t.Helper()
	if strings.Contains(msg, " ") {
		msg = strconv.Quote(msg)
	}
	line := w.wait(t, "msg="+msg+" ")
	m := addrAttr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no addr in %q", line)
	}
	return m[1]
}

// dnsbl is a fake DNSBL zone "bl.test" on loopback: listed answers
// 127.0.0.2 with a TXT record, everything else NXDOMAIN.
type dnsbl struct {
	*rbltest.Server
}

const testZone = "bl.test"

func newDNSBL(t *testing.T, listed ...string) *dnsbl {
	srv := &dnsbl{rbltest.NewServer(t)}
	for _, ip := range listed {
		srv.list(ip)
	}
	return srv
}

func (d *dnsbl) list(ip string, opts ...rbltest.Option) {
	name := rbl.QueryName(mustAddr(ip), testZone)
	d.Set(name, append([]rbltest.Option{rbltest.A("127.0.0.2"), rbltest.TXT("listed for testing")}, opts...)...)
}

func (d *dnsbl) queryName(ip string) string { return rbl.QueryName(mustAddr(ip), testZone) }

// errNotYet is what a polled condition says until it holds.
var errNotYet = errors.New("not yet")

// waitPage polls url until its body holds every one of parts and returns
// the status and body; the failure shows the last body and, when given,
// the log.
func waitPage(t *testing.T, url string, log fmt.Stringer, parts ...string) (int, string) {
	t.Helper()
	var code int
	var body string
	err := testutil.Poll(waitTimeout, 20*time.Millisecond, func() error {
		if code, body = testutil.Get(t, nil, url); testutil.ContainsAll(body, parts...) {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		more := ""
		if log != nil {
			more = "\nlog:\n" + log.String()
		}
		t.Fatalf("%s never showed %q within %v:\n%s%s", url, parts, waitTimeout, body, more)
	}
	return code, body
}

// watchedEnv is a testEnv whose stderr, the daemon's log, the test
// watches.
func watchedEnv(t *testing.T) (environment, *logWatch) {
	log := newLogWatch()
	env := testEnv(t, new(bytes.Buffer), nil)
	env.stderr = log
	return env, log
}

// unixConfig writes dir/rblmilter.toml for the fake DNSBL, listening on
// dir/milter.sock (extra as for writeConfig), and returns both paths.
func unixConfig(t *testing.T, dir string, d *dnsbl, extra string) (cfg, sock string) {
	t.Helper()
	cfg, sock = filepath.Join(dir, "rblmilter.toml"), filepath.Join(dir, "milter.sock")
	writeConfig(t, cfg, d, "unix:"+sock, extra)
	return cfg, sock
}

// writeConfig writes a config for the fake DNSBL; extra is appended at
// the top level (before any table).
func writeConfig(t *testing.T, path string, d *dnsbl, listen, extra string) {
	t.Helper()
	text := fmt.Sprintf(`listen = %q
resolvers = [%q]
sites = ["%s=127.0.0.[2..11]"]
%s

[metrics]
listen = "127.0.0.1:0"
`, listen, d.Addr(), testZone, extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mta opens a milter session as Postfix would. go-milter's default client
// asks for actions a protocol-v2 server refuses, so the masks are 0.
func mta(network, addr string) (*gomilter.ClientSession, error) {
	cl := gomilter.NewClientWithOptions(network, addr, gomilter.ClientOptions{
		ReadTimeout: waitTimeout, WriteTimeout: waitTimeout,
	})
	return cl.Session()
}

// connectAs runs the connect stage for client ip and returns the milter's
// answer.
func connectAs(t *testing.T, network, addr, ip string) *gomilter.Action {
	t.Helper()
	act, err := tryConnect(network, addr, ip)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func tryConnect(network, addr, ip string) (*gomilter.Action, error) {
	s, err := mta(network, addr)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	family := gomilter.FamilyInet
	if strings.Contains(ip, ":") {
		family = gomilter.FamilyInet6
	}
	return s.Conn("client.example", family, 25000, ip)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// waitRefused dials until the daemon stops accepting: it is a deadline
// poll, each attempt closing its connection at once so that it is not an
// in-flight session.
func waitRefused(t *testing.T, network, addr string) {
	t.Helper()
	err := testutil.Poll(waitTimeout, testutil.Interval, func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		return errNotYet
	})
	if err != nil {
		t.Fatalf("%s %s still accepts connections", network, addr)
	}
}

// lineScanner copies r into w line by line (the daemon's stderr).
func lineScanner(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fmt.Fprintln(w, sc.Text())
	}
}
