//go:build integration && linux

package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendmailRootEnv names the directory holding the Sendmail files that
// scripts/test.sh extracts from Debian's sendmail-bin, sendmail-base and
// sendmail-cf packages (sendmail-bin conflicts with postfix, so it is not
// installed).
const sendmailRootEnv = "RBLMILTER_SENDMAIL_ROOT"

// defaultSendmailRoot is where scripts/test.sh puts them.
const defaultSendmailRoot = "/var/cache/rblmilter-test/sendmail"

// sendmailTree returns the sendmail binary and the cf directory of the
// extracted packages.
func sendmailTree(t testing.TB) (bin, cfDir string) {
	t.Helper()
	root := os.Getenv(sendmailRootEnv)
	if root == "" {
		root = defaultSendmailRoot
	}
	bin = filepath.Join(root, "usr/libexec/sendmail/sendmail")
	cfDir = filepath.Join(root, "usr/share/sendmail/cf")
	for _, p := range []string{bin, filepath.Join(cfDir, "m4/cf.m4")} {
		if _, err := os.Stat(p); err != nil {
			missing(t, "Sendmail files not found (%v); set %s to the directory the sendmail-bin and sendmail-cf packages were extracted to", err, sendmailRootEnv)
		}
	}
	return bin, cfDir
}

// sendmailDaemon is one SMTP listener of the private Sendmail.
type sendmailDaemon struct {
	// Name is the DaemonPortOptions Name.
	Name string
	// Port, on both serverIPv4 and serverIPv6.
	Port int
	// Filter is the milter for this listener (InputFilter=); empty uses
	// the global list, which is contrib's INPUT_MAIL_FILTER.
	Filter string
}

// sendmailFilter is an extra milter defined like contrib's, at another port.
type sendmailFilter struct {
	Name string
	Port int
}

// The addresses of the Sendmail test's network namespace.
const (
	serverIPv4 = "192.0.2.1"
	serverIPv6 = "2001:db8::1"
	// contribMilterPort is the port in contrib/sendmail/rblmilter.mc.
	contribMilterPort = 8890
)

// sendmailInstance is a private Sendmail daemon (`sendmail -bD`) running
// in a network namespace with a hostname of its own.
type sendmailInstance struct {
	dir     string
	mailDir string
	syslog  string
	proc    *process
}

// sendmailMC builds the .mc: offline settings, private paths, the
// listeners, then contrib/sendmail/rblmilter.mc include()d verbatim and
// extra filters defined with contrib's equates.
func sendmailMC(t testing.TB, cfDir, dir string, daemons []sendmailDaemon, filters []sendmailFilter) string {
	t.Helper()
	contrib, err := filepath.Abs(contribPath("sendmail/rblmilter.mc"))
	if err != nil {
		t.Fatal(err)
	}
	equates := contribFilterEquates(t)
	etc := filepath.Join(dir, "etc")
	var b strings.Builder
	fmt.Fprintf(&b, "divert(-1)\n# Private Sendmail of rblmilter's integration tests.\ndivert(0)dnl\n")
	fmt.Fprintf(&b, "include(`%s/m4/cf.m4')dnl\n", cfDir)
	b.WriteString("VERSIONID(`rblmilter integration test')dnl\nOSTYPE(`linux')dnl\n")
	def := func(name, value string) { fmt.Fprintf(&b, "define(`%s', `%s')dnl\n", name, value) }
	def("MAIL_SETTINGS_DIR", etc+"/")
	def("confDOMAIN_NAME", mailDomain)
	// Offline: names come from a private hosts file and never from DNS,
	// no interface probing, no ident queries.
	def("confSERVICE_SWITCH_FILE", etc+"/service.switch")
	def("confHOSTS_FILE", etc+"/hosts")
	def("confDONT_PROBE_INTERFACES", "True")
	def("confBIND_OPTS", "-DNSRCH -DEFNAMES")
	def("confTO_IDENT", "0s")
	def("QUEUE_DIR", filepath.Join(dir, "queue"))
	def("confPID_FILE", filepath.Join(dir, "run/sendmail.pid"))
	def("STATUS_FILE", filepath.Join(dir, "run/sendmail.st"))
	def("ALIAS_FILE", etc+"/aliases")
	def("HELP_FILE", etc+"/helpfile")
	def("confLOG_LEVEL", "14")
	def("confMILTER_LOG_LEVEL", "14")
	def("confDEF_USER_ID", "nobody:nogroup")
	b.WriteString("FEATURE(`no_default_msa')dnl\n")
	b.WriteString("FEATURE(`accept_unresolvable_domains')dnl\n")
	b.WriteString("FEATURE(`nocanonify')dnl\n")
	// Local delivery writes each message to a file for the test to read;
	// no passwd lookup (w) and no aliasing (A) for the test recipients.
	fmt.Fprintf(&b, "FEATURE(`local_procmail', `%s/deliver.sh', `deliver.sh $u')dnl\n", etc)
	b.WriteString("MODIFY_MAILER_FLAGS(`LOCAL', `-wA')dnl\n")
	b.WriteString("dnl ---- contrib/sendmail/rblmilter.mc ----\n")
	fmt.Fprintf(&b, "include(`%s')dnl\n", contrib)
	for _, f := range filters {
		e := replaceOnce(t, "contrib INPUT_MAIL_FILTER", equates,
			fmt.Sprintf("S=inet:%d@127.0.0.1", contribMilterPort), fmt.Sprintf("S=inet:%d@127.0.0.1", f.Port))
		fmt.Fprintf(&b, "MAIL_FILTER(`%s', `%s')dnl\n", f.Name, e)
	}
	for _, d := range daemons {
		filter := ""
		if d.Filter != "" {
			filter = ", InputFilter=" + d.Filter
		}
		fmt.Fprintf(&b, "DAEMON_OPTIONS(`Port=%d, Addr=%s, Name=%s-v4, Family=inet%s')dnl\n", d.Port, serverIPv4, d.Name, filter)
		fmt.Fprintf(&b, "DAEMON_OPTIONS(`Port=%d, Addr=%s, Name=%s-v6, Family=inet6%s')dnl\n", d.Port, serverIPv6, d.Name, filter)
	}
	b.WriteString("MAILER(`local')dnl\nMAILER(`smtp')dnl\n")
	return b.String()
}

// contribFilterEquates returns the equates (S=..., F=..., T=...) of
// contrib's INPUT_MAIL_FILTER line.
func contribFilterEquates(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile("(?m)^INPUT_MAIL_FILTER\\(`rblmilter', `([^']*)'\\)").FindStringSubmatch(readContrib(t, "sendmail/rblmilter.mc"))
	if m == nil {
		t.Fatal("contrib/sendmail/rblmilter.mc has no INPUT_MAIL_FILTER(`rblmilter', `...') line")
	}
	return m[1]
}

// sendmailLab is what a test against a private Sendmail starts from: a
// network namespace in which the server and the clients have their
// addresses, a shared directory, and rbldnsd inside. Inside the namespace
// every port is free, so the lab uses fixed ones.
type sendmailLab struct {
	ns      *netns
	dir     string
	dns     *rbldnsd
	clients []string
}

func newSendmailLab(t *testing.T, clients ...string) *sendmailLab {
	t.Helper()
	requireRoot(t)
	sendmailTree(t)
	requireCommands(t, "rbldnsd", "ip", "m4", "unshare")
	addrs := []string{serverIPv4 + "/32", serverIPv6 + "/128"}
	for _, ip := range clients {
		if strings.Contains(ip, ":") {
			addrs = append(addrs, ip+"/128")
		} else {
			addrs = append(addrs, ip+"/32")
		}
	}
	ns := newNetns(t, addrs...)
	dir := sharedDir(t)
	return &sendmailLab{ns: ns, dir: dir, dns: startRbldnsd(t, dir, 5353, ns, ns.exec()...), clients: clients}
}

// startContrib starts one rblmilter with opts on contrib's milter address
// (its DNS and metrics addresses set here) and one Sendmail daemon, name,
// with contrib's INPUT_MAIL_FILTER line, and returns the rblmilter, the
// Sendmail and the daemon's address.
func (l *sendmailLab) startContrib(t *testing.T, name string, opts milterOptions) (*rblmilterDaemon, *sendmailInstance, string) {
	t.Helper()
	opts.Listen = fmt.Sprintf("inet:%d@127.0.0.1", contribMilterPort)
	opts.DNS = l.dns.addr
	opts.Metrics = "127.0.0.1:9890"
	d := startRblmilter(t, l.dir, "rblmilter-"+name, opts, l.ns, l.ns.exec()...)
	const smtpPort = 2525
	sm := startSendmail(t, l.ns, sharedDir(t), []sendmailDaemon{{Name: name, Port: smtpPort}}, nil, l.clients...)
	return d, sm, hostPort(serverIPv4, smtpPort)
}

// startSendmail builds sendmail.cf with m4 and runs `sendmail -bD` inside
// ns (clients are the client addresses it knows host names for), in its own UTS namespace (hostname mta.test.invalid, so that Sendmail
// finds a fully qualified name without asking DNS) and mount namespace
// (a private /dev whose /dev/log is the test's syslog socket).
func startSendmail(t testing.TB, ns *netns, dir string, daemons []sendmailDaemon, filters []sendmailFilter, clients ...string) *sendmailInstance {
	t.Helper()
	bin, cfDir := sendmailTree(t)
	cmds := requireCommands(t, "m4", "unshare", "mount", "hostname")
	s := &sendmailInstance{dir: dir, mailDir: filepath.Join(dir, "mail"), syslog: filepath.Join(dir, "syslog.log")}
	for _, d := range []string{"etc", "queue", "run", "dev"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "queue"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Written by the local mailer, which may run as nobody.
	if err := os.MkdirAll(s.mailDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.mailDir, 0o777); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	writeFile(t, filepath.Join(etc, "deliver.sh"), fmt.Sprintf(`#!/bin/sh
# Local mailer of the test Sendmail: one file per delivered message.
umask 022
tmp=%[1]s/msg.$$.tmp
cat > "$tmp" && mv "$tmp" %[1]s/msg.$$.eml
`, s.mailDir))
	if err := os.Chmod(filepath.Join(etc, "deliver.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(etc, "service.switch"), "hosts files\naliases files\n")
	// Every client has a host name, as most real clients do: Sendmail then
	// hands the milter that name, not the address, as the connect host, and
	// the address only in macros.
	hosts := fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n", serverIPv4, mailDomain, serverIPv6, mailDomain)
	for _, ip := range clients {
		hosts += fmt.Sprintf("%s %s\n", ip, clientName(ip))
	}
	writeFile(t, filepath.Join(etc, "hosts"), hosts)
	writeFile(t, filepath.Join(etc, "aliases"), "")
	writeFile(t, filepath.Join(etc, "helpfile"), "")
	writeFile(t, filepath.Join(dir, "run/sendmail.st"), "")

	mc := sendmailMC(t, cfDir, dir, daemons, filters)
	writeFile(t, filepath.Join(etc, "sendmail.mc"), mc)
	cf, err := runErr(cmds["m4"], filepath.Join(etc, "sendmail.mc"))
	if err != nil {
		t.Fatalf("m4 sendmail.mc: %v\n%s", err, cf)
	}
	cfPath := filepath.Join(etc, "sendmail.cf")
	writeFile(t, cfPath, cf)

	s.listenSyslog(t)
	script := fmt.Sprintf(`set -e
hostname %[1]s
# A private /dev: the real device nodes Sendmail uses, plus the test's
# syslog socket as /dev/log.
for f in null zero random urandom; do : > %[2]s/$f; mount --bind /dev/$f %[2]s/$f; done
mount --rbind %[2]s /dev
# The clients' names, for the reverse lookups Sendmail makes through libc.
mount --bind %[5]s /etc/hosts
exec %[3]s -bD -C %[4]s
`, mailDomain, filepath.Join(dir, "dev"), bin, cfPath, filepath.Join(etc, "hosts"))
	argv := append(ns.exec(), cmds["unshare"], "--uts", "--mount", "--", "/bin/sh", "-c", script)
	s.proc = startProcess(t, "sendmail", filepath.Join(dir, "sendmail.out"), nil, argv...)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLog(t, "sendmail syslog", s.syslog)
		}
	})
	for _, d := range daemons {
		waitFor(t, startTimeout, fmt.Sprintf("sendmail to listen on port %d", d.Port), func() error {
			if s.proc.exited() {
				dumpLog(t, "sendmail syslog", s.syslog)
				t.Fatalf("%v", s.proc.exitError())
			}
			return listening(s.proc.pid(), d.Port)
		})
	}
	return s
}

// clientName is the host name the test Sendmail finds for a client.
func clientName(ip string) string {
	return "client-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip) + ".test.invalid"
}

// listenSyslog receives Sendmail's syslog messages on dir/dev/log and
// appends them to s.syslog.
func (s *sendmailInstance) listenSyslog(t testing.TB) {
	t.Helper()
	sock := filepath.Join(s.dir, "dev", "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(s.syslog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64*1024)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			fmt.Fprintln(out, strings.TrimRight(string(buf[:n]), "\x00\n"))
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
		out.Close()
	})
}

// syslogText is what Sendmail logged so far.
func (s *sendmailInstance) syslogText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.syslog)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitSyslog waits until Sendmail has logged a line containing want, and
// shows that line.
func (s *sendmailInstance) waitSyslog(t testing.TB, want string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("sendmail to log %q", want), func() error {
		for _, line := range strings.Split(s.syslogText(t), "\n") {
			if strings.Contains(line, want) {
				t.Logf("sendmail logged: %s", line)
				return nil
			}
		}
		return fmt.Errorf("not in %s yet", s.syslog)
	})
}

// listening reports whether the network namespace of process pid has a TCP
// socket listening on port, read from /proc so that checking has no side
// effects (a test connection would be an SMTP session).
func listening(pid, port int) error {
	want := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is field 1, state field 3; 0A is LISTEN.
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				f.Close()
				return nil
			}
		}
		f.Close()
	}
	return fmt.Errorf("nothing listens on port %d yet", port)
}
