//go:build integration && linux

package integration

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/internal/testutil"
)

// postfixListener is one smtpd service of the private Postfix instance.
type postfixListener struct {
	// Port on 127.0.0.1.
	Port int
	// Chroot runs this smtpd chrooted in the queue directory, as Debian
	// does by default.
	Chroot bool
	// Milters is the smtpd_milters value; empty uses main.cf's.
	Milters string
}

// postfixInstance is a private Postfix instance (its own config, queue and
// data directories) started with `postfix -c DIR start`.
type postfixInstance struct {
	postfixCmd string
	confDir    string
	queueDir   string
	mailDir    string
	maillog    string
}

// postfixLab is what a test against a private Postfix starts from: root,
// the commands, a shared directory, rbldnsd on loopback and the
// instance's directories.
type postfixLab struct {
	dir string
	dns *rbldnsd
	pf  *postfixInstance
}

func newPostfixLab(t *testing.T) *postfixLab {
	t.Helper()
	requireRoot(t)
	requireCommands(t, "postfix", "postconf", "rbldnsd")
	dir := sharedDir(t)
	dns := startRbldnsd(t, dir, freePort(t, "udp", "127.0.0.1"), hostDialer{})
	return &postfixLab{dir: dir, dns: dns, pf: newPostfixDirs(t, dir)}
}

// startContrib starts one rblmilter with opts (its DNS, listen and metrics
// addresses set here) and Postfix with contrib's milter settings pointing
// at it, on one listener, and returns the daemon and that listener's
// address.
func (l *postfixLab) startContrib(t *testing.T, name string, opts milterOptions) (*rblmilterDaemon, string) {
	t.Helper()
	milterPort := freePort(t, "tcp", "127.0.0.1")
	opts.Listen = fmt.Sprintf("inet:127.0.0.1:%d", milterPort)
	opts.DNS = l.dns.addr
	opts.Metrics = hostPort("127.0.0.1", freePort(t, "tcp", "127.0.0.1"))
	d := startRblmilter(t, l.dir, name, opts, hostDialer{})
	smtpPort := freePort(t, "tcp", "127.0.0.1")
	l.pf.start(t, readPostfixSnippet(t).mainLines(t, milterPort), "", []postfixListener{{Port: smtpPort}})
	return d, hostPort("127.0.0.1", smtpPort)
}

// newPostfixDirs lays out the instance's directories below dir, so that
// callers can put things (such as a milter socket) into the queue
// directory before it starts.
func newPostfixDirs(t testing.TB, dir string) *postfixInstance {
	t.Helper()
	p := &postfixInstance{
		postfixCmd: requireCommands(t, "postfix")["postfix"],
		confDir:    filepath.Join(dir, "postfix", "conf"),
		queueDir:   filepath.Join(dir, "postfix", "queue"),
		mailDir:    filepath.Join(dir, "postfix", "mail"),
		maillog:    filepath.Join(dir, "postfix", "maillog"),
	}
	for _, d := range []string{p.confDir, p.queueDir, filepath.Join(dir, "postfix", "data"), p.mailDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := lookupIDs(t, "postfix", "postfix")
	if err := os.Chown(filepath.Join(dir, "postfix", "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	// The virtual delivery agent writes the mailbox as nobody.
	if err := os.Chown(p.mailDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return p
}

// start writes main.cf (the test's base settings, then mainExtra, then the
// active lines of contrib/postfix/main.cf as given in contrib) and
// master.cf, and starts the instance.
func (p *postfixInstance) start(t testing.TB, contribLines, mainExtra string, listeners []postfixListener) {
	t.Helper()
	base := filepath.Dir(p.confDir)
	main := fmt.Sprintf(`# Private Postfix instance of rblmilter's integration tests.
compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = %[2]s
mydomain = test.invalid
myorigin = $myhostname
mydestination =
# Loopback only. IPv6 is on so that XCLIENT accepts IPv6 client addresses.
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.1/32
smtpd_authorized_xclient_hosts = 127.0.0.1
# No reverse lookups of client addresses: nothing may leave loopback.
smtpd_peername_lookup = no
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
# Everything for the test domain lands in one maildir, owned by nobody.
virtual_mailbox_domains = %[2]s
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
alias_maps =
alias_database =
relayhost =
default_transport = error:5.3.0 the tests deliver nothing off this machine
biff = no
%[3]s
# ---- contrib/postfix/main.cf (active lines, milter address set by the test) ----
%[4]s
`, base, mailDomain, mainExtra, contribLines)

	var master strings.Builder
	master.WriteString("# service type private unpriv chroot wakeup maxproc command\n")
	for i, l := range listeners {
		chroot := "n"
		if l.Chroot {
			chroot = "y"
		}
		fmt.Fprintf(&master, "127.0.0.1:%d inet n - %s - - smtpd\n", l.Port, chroot)
		if l.Milters != "" {
			// A parameter of our own keeps the { ... } value out of
			// master.cf's -o quoting rules.
			name := fmt.Sprintf("test_listener%d_milters", i)
			main += fmt.Sprintf("%s = %s\n", name, l.Milters)
			fmt.Fprintf(&master, "  -o smtpd_milters=$%s\n", name)
		}
	}
	master.WriteString(readText(t, filepath.Join("..", "scripts", "lib", "postfix-services.cf")))
	// Mail for the test domain is delivered to a maildir.
	master.WriteString("virtual   unix  -       n       n       -       -       virtual\n")
	writeFile(t, filepath.Join(p.confDir, "main.cf"), main)
	writeFile(t, filepath.Join(p.confDir, "master.cf"), master.String())
	if anyChroot(listeners) {
		p.prepareChroot(t)
	}

	// postconf reports settings it does not know: a typo in contrib
	// would show here.
	if out := run(t, "postconf", "-c", p.confDir, "-n"); strings.Contains(out, "warning") {
		t.Fatalf("postconf -c %s -n warns:\n%s", p.confDir, out)
	}
	run(t, p.postfixCmd, "-c", p.confDir, "check")
	t.Cleanup(func() { p.stop(t) })
	run(t, p.postfixCmd, "-c", p.confDir, "start")
	waitFor(t, startTimeout, "postfix master to start", func() error {
		b, err := os.ReadFile(p.maillog)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "daemon started") {
			return fmt.Errorf("no \"daemon started\" in %s yet", p.maillog)
		}
		return nil
	})
}

func anyChroot(ls []postfixListener) bool {
	for _, l := range ls {
		if l.Chroot {
			return true
		}
	}
	return false
}

// prepareChroot copies the files a chrooted smtpd reads into the queue
// directory, as Debian's postfix init script does for the system instance.
func (p *postfixInstance) prepareChroot(t testing.TB) {
	t.Helper()
	for _, f := range []string{"etc/localtime", "etc/services", "etc/resolv.conf", "etc/hosts", "etc/nsswitch.conf", "etc/host.conf"} {
		b, err := os.ReadFile("/" + f)
		if err != nil {
			continue
		}
		writeFile(t, filepath.Join(p.queueDir, f), string(b))
	}
}

// masterPID is the PID of the instance's master process.
func (p *postfixInstance) masterPID() (int, error) {
	return pidFromFile(filepath.Join(p.queueDir, "pid", "master.pid"))
}

// stop runs `postfix stop` and makes sure the master process (which takes
// its children down with it) is gone, killing it by PID otherwise.
func (p *postfixInstance) stop(t testing.TB) {
	pid, pidErr := p.masterPID()
	if out, err := runErr(p.postfixCmd, "-c", p.confDir, "stop"); err != nil {
		t.Logf("postfix stop: %v\n%s", err, out)
	}
	if pidErr == nil {
		if err := testutil.Poll(20*time.Second, pollInterval, func() error {
			if processAlive(pid) {
				return fmt.Errorf("postfix master %d still running", pid)
			}
			return nil
		}); err != nil {
			t.Logf("%v; killing it", err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if t.Failed() {
		dumpLog(t, "postfix", p.maillog)
	}
}

// maillogText is the instance's log so far.
func (p *postfixInstance) maillogText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.maillog)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitLog waits until the maillog has a line containing all parts, and
// shows that line.
func (p *postfixInstance) waitLog(t testing.TB, parts ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("postfix to log a line with %q", parts), func() error {
	lines:
		for _, line := range strings.Split(p.maillogText(t), "\n") {
			for _, part := range parts {
				if !strings.Contains(line, part) {
					continue lines
				}
			}
			t.Logf("postfix logged: %s", line)
			return nil
		}
		return fmt.Errorf("no such line in %s", p.maillog)
	})
}

func lookupIDs(t testing.TB, userName, groupName string) (int, int) {
	t.Helper()
	u, err := user.Lookup(userName)
	if err != nil {
		missing(t, "user %s: %v", userName, err)
	}
	g, err := user.LookupGroup(groupName)
	if err != nil {
		missing(t, "group %s: %v", groupName, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return uid, gid
}
