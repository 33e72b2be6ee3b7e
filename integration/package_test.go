//go:build integration && linux

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The Debian package's names, as scripts/deb.sh builds it.
const (
	packageName    = "rblmilter"
	packageUser    = "rblmilter"
	packageBinary  = "/usr/sbin/rblmilter"
	packageConfig  = "/etc/rblmilter/rblmilter.toml"
	packageUnit    = "/lib/systemd/system/rblmilter.service"
	packageProgram = "/usr/share/doc/rblmilter/examples/supervisord/rblmilter.conf"
)

// leftAfterRemove is what `dpkg -r` may leave, as docs/install.md lists
// it: the conffile (dpkg keeps it until purge), the unit's enable link and
// the mask that keeps it from starting without its binary (with
// deb-systemd-helper's records of both), and dpkg's own record of a
// package in the config-files state.
var leftAfterRemove = []string{
	"/etc/rblmilter",
	packageConfig,
	"/etc/systemd/system/rblmilter.service",
	"/etc/systemd/system/multi-user.target.wants/rblmilter.service",
	"/var/lib/systemd/deb-systemd-helper-enabled/rblmilter.service.dsh-also",
	"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/rblmilter.service",
	"/var/lib/systemd/deb-systemd-helper-masked/rblmilter.service",
	"/var/lib/dpkg/info/rblmilter.list",
	"/var/lib/dpkg/info/rblmilter.postrm",
}

// manCache are man-db's formatted copies of the pages, written when a page
// is shown (systemd-analyze verify shows the unit's Documentation= pages)
// and expired by man-db's daily job; they may outlive the package.
var manCache = []string{
	"/var/cache/man/cat8/rblmilter.8.gz",
	"/var/cache/man/cat5/rblmilter.toml.5.gz",
}

// TestInstalledPackage installs the Debian package named by RBLMILTER_DEB as
// an admin would (dpkg -i), checks what it put where, runs the installed
// binary under supervisord with the installed program file and the
// installed config (pointed at the test's rbldnsd) behind a private Postfix
// through the connect-stage cases, then removes (dpkg -r) and purges
// (dpkg -P) the package and checks that only the documented leftovers
// remain. It changes the machine, so it runs only when asked:
// scripts/test.sh sets RBLMILTER_DEB to the package scripts/release.sh
// built. The machine is left as found: the package is purged and the
// system user it created deleted, also when the test fails.
func TestInstalledPackage(t *testing.T) {
	deb := os.Getenv("RBLMILTER_DEB")
	if deb == "" {
		t.Skip("RBLMILTER_DEB is not set: scripts/test.sh sets it to the package scripts/release.sh built")
	}
	requireRoot(t)
	cmds := requireCommands(t, "dpkg", "dpkg-query", "dpkg-statoverride", "man", "runuser", "git",
		"systemd-analyze", "supervisord", "supervisorctl", "postfix", "postconf", "rbldnsd")
	if status := packageStatus(t); status != "" {
		t.Fatalf("package %s is on this machine already (dpkg status %q): this test installs and purges it, so it runs only where it is not", packageName, status)
	}
	_, err := user.Lookup(packageUser)
	userExisted := err == nil
	before := packagePaths(t)
	mtaConfig := hashFiles(t, "/etc/postfix", "/etc/mail")
	t.Cleanup(func() { restoreMachine(t, cmds["dpkg"], before, userExisted) })

	out := run(t, cmds["dpkg"], "-i", deb)
	t.Logf("dpkg -i %s:\n%s", deb, out)

	t.Run("postinst prints the lines to add and edits no MTA config", func(t *testing.T) {
		snippet := readPostfixSnippet(t)
		for _, kv := range snippet.Active {
			if line := kv[0] + " = " + kv[1]; !strings.Contains(out, "    "+line+"\n") {
				t.Errorf("dpkg -i output lacks contrib/postfix/main.cf's line %q", line)
			}
		}
		sendmailLine := strings.TrimSuffix(grepLine(t, readContrib(t, "sendmail/rblmilter.mc"), "INPUT_MAIL_FILTER("), "dnl")
		if !strings.Contains(out, "    "+sendmailLine+"\n") {
			t.Errorf("dpkg -i output lacks contrib/sendmail/rblmilter.mc's line %q", sendmailLine)
		}
		expectSameFiles(t, "after dpkg -i", mtaConfig, hashFiles(t, "/etc/postfix", "/etc/mail"))
	})

	t.Run("postinst starts nothing", func(t *testing.T) {
		// No systemd runs here and policy-rc.d denies starting services
		// (scripts/test.sh installs one where none is): postinst must not
		// start the daemon by any other way.
		if pids := processesOf(t, packageBinary); len(pids) > 0 {
			t.Errorf("%s runs after dpkg -i (pids %v)", packageBinary, pids)
		}
	})

	t.Run("files", func(t *testing.T) {
		for _, f := range []struct {
			path        string
			mode        fs.FileMode
			owner, grp  string
			description string
		}{
			{packageBinary, 0o755, "root", "root", "the daemon"},
			{packageConfig, 0o640, "root", packageUser, "the config, through dpkg-statoverride (it may hold a DQS key)"},
			{packageUnit, 0o644, "root", "root", "the systemd unit"},
			{"/usr/share/man/man8/rblmilter.8.gz", 0o644, "root", "root", "rblmilter(8)"},
			{"/usr/share/man/man5/rblmilter.toml.5.gz", 0o644, "root", "root", "rblmilter.toml(5)"},
			{"/usr/share/doc/rblmilter/copyright", 0o644, "root", "root", "the copyright file"},
			{"/usr/share/doc/rblmilter/changelog.gz", 0o644, "root", "root", "the changelog"},
			{"/usr/share/doc/rblmilter/README.md", 0o644, "root", "root", "the README"},
			{packageProgram, 0o644, "root", "root", "the supervisord example"},
		} {
			expectFile(t, f.path, f.mode, f.owner, f.grp, f.description)
		}
		if got, want := readText(t, packageConfig), readContrib(t, "rblmilter.toml"); got != want {
			t.Errorf("%s differs from contrib/rblmilter.toml", packageConfig)
		}
		conffiles := run(t, "dpkg-query", "-W", "-f=${Conffiles}", packageName)
		if !strings.Contains(conffiles, " "+packageConfig+" ") {
			t.Errorf("dpkg lists the conffiles %q, want %s among them", conffiles, packageConfig)
		}
		rev := strings.TrimSpace(run(t, cmds["git"], "-C", "..", "rev-parse", "--short=12", "HEAD"))
		if v := run(t, packageBinary, "-version"); !strings.Contains(v, "("+rev) {
			t.Errorf("%s -version = %q, want the revision %s", packageBinary, v, rev)
		}
	})

	t.Run("system user", func(t *testing.T) {
		expectSystemUser(t, packageUser)
	})

	t.Run("check-config on the installed config", func(t *testing.T) {
		// Without -config, as the unit and the admin run it; and as the
		// daemon's user, which must be able to read it for SIGHUP.
		// The conffile is contrib's example, whose lists are all [[list]]
		// tables (its sites is empty), so their number is the count.
		lists := strings.Count("\n"+readText(t, filepath.Join("..", "contrib", "rblmilter.toml")), "\n[[list]]")
		want := fmt.Sprintf("%s: OK (%d lists, listen inet:127.0.0.1:8890)", packageConfig, lists)
		if got := strings.TrimSpace(run(t, packageBinary, "-check-config")); got != want {
			t.Errorf("rblmilter -check-config = %q, want %q", got, want)
		}
		if got := strings.TrimSpace(run(t, cmds["runuser"], "-u", packageUser, "--", packageBinary, "-check-config")); got != want {
			t.Errorf("rblmilter -check-config as %s = %q, want %q", packageUser, got, want)
		}
	})

	t.Run("systemd unit", func(t *testing.T) {
		unit := readText(t, packageUnit)
		lines := map[string]bool{}
		for _, l := range strings.Split(unit, "\n") {
			lines[l] = true
		}
		// contrib's hardening, all of it, except what the package changes.
		changed := map[string]bool{"DynamicUser=yes": true, "ConfigurationDirectory=rblmilter": true, "ConfigurationDirectoryMode=0750": true,
			"ExecStart=/usr/local/bin/rblmilter -config /etc/rblmilter/rblmilter.toml": true}
		for _, l := range strings.Split(readContrib(t, "systemd/rblmilter.service"), "\n") {
			if l == "" || strings.HasPrefix(l, "#") || changed[l] || strings.HasPrefix(l, "Documentation=") {
				continue
			}
			if !lines[l] {
				t.Errorf("%s lacks contrib's line %q", packageUnit, l)
			}
		}
		for _, want := range []string{"ExecStart=" + packageBinary + " -config " + packageConfig, "User=" + packageUser, "Group=" + packageUser} {
			if !lines[want] {
				t.Errorf("%s lacks the line %q", packageUnit, want)
			}
		}
		verifyUnit(t, cmds["systemd-analyze"], packageUnit)
	})

	t.Run("man pages", func(t *testing.T) {
		for _, p := range []struct{ args, want string }{
			{"8 rblmilter", "/usr/share/man/man8/rblmilter.8.gz"},
			{"5 rblmilter.toml", "/usr/share/man/man5/rblmilter.toml.5.gz"},
		} {
			if got := strings.TrimSpace(run(t, append([]string{cmds["man"], "-w"}, strings.Fields(p.args)...)...)); got != p.want {
				t.Errorf("man -w %s = %q, want %q", p.args, got, p.want)
			}
		}
	})

	// The top-level test's directory: below a subtest's, Postfix's socket
	// paths would exceed the 108 bytes a unix socket address holds.
	dir := sharedDir(t)
	t.Run("installed daemon under supervisord behind Postfix", func(t *testing.T) {
		testInstalledDaemon(t, dir)
	})

	t.Run("dpkg -r keeps the config and the user", func(t *testing.T) {
		edited := readText(t, packageConfig)
		t.Logf("dpkg -r:\n%s", run(t, cmds["dpkg"], "-r", packageName))
		if status := packageStatus(t); status != "rc" {
			t.Errorf("dpkg status after dpkg -r = %q, want \"rc\" (removed, config files kept)", status)
		}
		left := newPaths(before, packagePaths(t))
		if extra := without(left, leftAfterRemove, manCache); len(extra) > 0 {
			t.Errorf("dpkg -r left undocumented files: %v", extra)
		}
		if got, err := os.ReadFile(packageConfig); err != nil || string(got) != edited {
			t.Errorf("dpkg -r did not keep the admin's edited %s (err %v)", packageConfig, err)
		}
		if pids := processesOf(t, packageBinary); len(pids) > 0 {
			t.Errorf("%s still runs after dpkg -r (pids %v)", packageBinary, pids)
		}
		expectSystemUser(t, packageUser)
		expectSameFiles(t, "after dpkg -r", mtaConfig, hashFiles(t, "/etc/postfix", "/etc/mail"))
	})

	t.Run("dpkg -P leaves only the user", func(t *testing.T) {
		t.Logf("dpkg -P:\n%s", run(t, cmds["dpkg"], "-P", packageName))
		if status := packageStatus(t); status != "" {
			t.Errorf("dpkg status after dpkg -P = %q, want the package unknown", status)
		}
		if extra := without(newPaths(before, packagePaths(t)), manCache); len(extra) > 0 {
			t.Errorf("dpkg -P left undocumented files: %v", extra)
		}
		if gone := newPaths(packagePaths(t), before); len(gone) > 0 {
			t.Errorf("files that were there before the package are gone: %v", gone)
		}
		if out, err := runErr(cmds["dpkg-statoverride"], "--list", packageConfig); err == nil {
			t.Errorf("dpkg -P left the stat override of %s: %s", packageConfig, out)
		}
		expectSystemUser(t, packageUser)
		expectSameFiles(t, "after dpkg -P", mtaConfig, hashFiles(t, "/etc/postfix", "/etc/mail"))
	})
}

// testInstalledDaemon, with its files in dir, points the installed config at the test's rbldnsd,
// lists and free ports by editing it in place as an admin would, starts the
// installed binary under a private supervisord with the installed example
// program file (only its log file moved to the test's directory), and
// sends the connect-stage cases through a private Postfix set up with
// contrib/postfix/main.cf.
func testInstalledDaemon(t *testing.T, dir string) {
	dns := startRbldnsd(t, dir, freePort(t, "udp", "127.0.0.1"), hostDialer{})
	milterPort := freePort(t, "tcp", "127.0.0.1")
	metrics := hostPort("127.0.0.1", freePort(t, "tcp", "127.0.0.1"))

	cfg := readText(t, packageConfig)
	for _, e := range []struct{ table, key, value string }{
		{"", "listen", strconv.Quote(fmt.Sprintf("inet:127.0.0.1:%d", milterPort))},
		{"", "resolvers", fmt.Sprintf("[%q]", dns.addr)},
		{"", "allowlist_threshold", "-1"},
		// The test clients use documentation and loopback addresses.
		{"", "skip", "[]"},
		{"", "sites", strings.TrimPrefix(testSites, "sites = ")},
		{"", "health_interval", `"1s"`},
		{"log", "format", `"json"`},
		{"metrics", "listen", strconv.Quote(metrics)},
	} {
		cfg = setTOMLKey(t, cfg, e.table, e.key, e.value)
	}
	cfg = replaceListTables(t, cfg, testListTables)
	// os.WriteFile keeps the file's owner and mode (0640 root:rblmilter).
	if err := os.WriteFile(packageConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runuser := requireCommands(t, "runuser")["runuser"]
	if out, err := runErr(runuser, "-u", packageUser, "--", packageBinary, "-check-config"); err != nil {
		t.Fatalf("rblmilter -check-config of the edited %s as %s: %v\n%s\nconfig:\n%s", packageConfig, packageUser, err, out, cfg)
	}

	program := readText(t, packageProgram)
	for _, want := range []string{"command=" + packageBinary + " -config " + packageConfig + "\n", "user=" + packageUser + "\n"} {
		if !strings.Contains(program, want) {
			t.Errorf("%s lacks the line %q", packageProgram, strings.TrimSpace(want))
		}
	}
	_, d, pid := startSupervised(t, dir, "installed rblmilter", metrics, func(daemonLog string) string {
		return setProgramOptions(t, packageProgram, program, map[string]string{"stdout_logfile": daemonLog})
	})
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != packageBinary {
		t.Errorf("supervisord runs %q (err %v), want %s", exe, err, packageBinary)
	}
	u, err := user.Lookup(packageUser)
	if err != nil {
		t.Fatal(err)
	}
	if uid := processUID(t, pid); strconv.Itoa(uid) != u.Uid {
		t.Errorf("the installed daemon runs as uid %d, want %s's %s", uid, packageUser, u.Uid)
	}

	pf := newPostfixDirs(t, dir)
	smtp := freePort(t, "tcp", "127.0.0.1")
	pf.start(t, readPostfixSnippet(t).mainLines(t, milterPort), "", []postfixListener{{Port: smtp}})
	route := postfixRoute{pf: pf, d: d, port: smtp}
	// Counted, the list that lists the world would reject every client.
	d.waitHealth(t, "Wildcard List", 3, "unhealthy", "not counted")
	testConnectMatrix(t, route.rejectedAtConnect, func(t *testing.T, ip, decision string) { route.accepted(t, ip, decision) })
}

// setTOMLKey sets key in table ("" for the top level) to value, on the one
// line that sets it or shows it commented out ("# key = ...").
func setTOMLKey(t testing.TB, text, table, key, value string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	current := ""
	var set, shown []int
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "["):
			current = strings.Trim(l, "[] ")
		case current != table:
		case strings.HasPrefix(l, key+" = "):
			set = append(set, i)
		case strings.HasPrefix(l, "# "+key+" = "):
			shown = append(shown, i)
		}
	}
	if len(set) == 0 {
		set = shown
	}
	if len(set) != 1 {
		t.Fatalf("%s sets %s in [%s] on %d lines, want exactly one", packageConfig, key, table, len(set))
	}
	lines[set[0]] = key + " = " + value
	return strings.Join(lines, "\n")
}

// replaceListTables replaces the [[list]] tables (from the first [[list]]
// line to the last setting before the next other table) with tables.
func replaceListTables(t testing.TB, text, tables string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	start := slices.Index(lines, "[[list]]")
	if start < 0 {
		t.Fatalf("%s has no [[list]] table", packageConfig)
	}
	end := start
	for i := start + 1; i < len(lines) && (!strings.HasPrefix(lines[i], "[") || lines[i] == "[[list]]"); i++ {
		if lines[i] != "" && !strings.HasPrefix(lines[i], "#") {
			end = i
		}
	}
	out := append(append(slices.Clone(lines[:start]), strings.Split(strings.TrimSpace(tables), "\n")...), lines[end+1:]...)
	return strings.Join(out, "\n")
}

// packageStatus is dpkg's abbreviated status of the package ("ii"
// installed, "rc" removed with its config files kept, ...), or "" when
// dpkg does not have it.
func packageStatus(t testing.TB) string {
	t.Helper()
	out, err := runErr("dpkg-query", "-W", "-f=${db:Status-Abbrev}", packageName)
	status := strings.TrimSpace(out)
	if err != nil || len(status) < 2 || status[1] == 'n' {
		return ""
	}
	return status
}

// packagePaths lists every path below /etc, /lib, /usr and /var whose name
// mentions rblmilter.
func packagePaths(t testing.TB) []string {
	t.Helper()
	// Not the package's: temporary files, the suite's Sendmail and other tests'
	// network namespaces.
	skip := map[string]bool{"/var/tmp": true, "/var/cache/rblmilter-test": true, "/etc/netns": true}
	var paths []string
	for _, root := range []string{"/etc", "/lib", "/usr", "/var"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
					return nil
				}
				return err
			}
			if skip[path] {
				return filepath.SkipDir
			}
			if strings.Contains(path, "rblmilter") {
				paths = append(paths, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(paths)
	return paths
}

// newPaths are the paths in after that are not in before.
func newPaths(before, after []string) []string {
	var out []string
	for _, p := range after {
		if _, found := slices.BinarySearch(before, p); !found {
			out = append(out, p)
		}
	}
	return out
}

// without is paths minus the allowed lists.
func without(paths []string, allowed ...[]string) []string {
	var out []string
	for _, p := range paths {
		if !slices.ContainsFunc(allowed, func(a []string) bool { return slices.Contains(a, p) }) {
			out = append(out, p)
		}
	}
	return out
}

// hashFiles maps every regular file below the roots to its SHA-256.
func hashFiles(t testing.TB, roots ...string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			sums[path] = hex.EncodeToString(sum[:])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return sums
}

// expectSameFiles fails the test when a file was added, removed or changed.
func expectSameFiles(t testing.TB, when string, before, after map[string]string) {
	t.Helper()
	for path, sum := range before {
		if after[path] != sum {
			t.Errorf("%s: %s changed or vanished", when, path)
		}
	}
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s: %s appeared", when, path)
		}
	}
}

// expectFile checks a file's type, mode and owners.
func expectFile(t testing.TB, path string, mode fs.FileMode, owner, group, description string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s (%s): %v", path, description, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
		t.Errorf("%s (%s): mode %v, want a regular file with %v", path, description, fi.Mode(), mode)
	}
	if got := userName(st.Uid) + ":" + groupName(st.Gid); got != owner+":"+group {
		t.Errorf("%s (%s): owned by %s, want %s:%s", path, description, got, owner, group)
	}
}

// expectSystemUser checks that name is a system user (uid below 1000) with
// its own group, no login shell and no home directory.
func expectSystemUser(t testing.TB, name string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Errorf("user %s: %v", name, err)
		return
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || uid == 0 {
		t.Errorf("user %s has uid %s, want a system uid (1..999)", name, u.Uid)
	}
	if g, err := user.LookupGroupId(u.Gid); err != nil || g.Name != name {
		t.Errorf("user %s's primary group is %v (err %v), want %s", name, g, err, name)
	}
	if _, err := os.Stat(u.HomeDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("user %s's home %s exists (err %v); want none", name, u.HomeDir, err)
	}
	passwd := grepLine(t, readText(t, "/etc/passwd"), name+":")
	if shell := passwd[strings.LastIndexByte(passwd, ':')+1:]; shell != "/usr/sbin/nologin" && shell != "/bin/false" {
		t.Errorf("user %s has the shell %s, want none (/usr/sbin/nologin)", name, shell)
	}
}

func userName(uid uint32) string {
	u, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		return strconv.Itoa(int(uid))
	}
	return u.Username
}

func groupName(gid uint32) string {
	g, err := user.LookupGroupId(strconv.Itoa(int(gid)))
	if err != nil {
		return strconv.Itoa(int(gid))
	}
	return g.Name
}

// grepLine is the first line of text starting with prefix.
func grepLine(t testing.TB, text, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q", prefix)
	return ""
}

// processesOf lists the processes running the program at path.
func processesOf(t testing.TB, path string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

// restoreMachine undoes what the test did to the machine, whatever state
// it stopped in: purges the package; removes what a broken package might
// have left in the documented places and man-db's cached copies of its
// pages, where they were not there before; and deletes the system user and
// group when the package created them.
func restoreMachine(t testing.TB, dpkg string, before []string, userExisted bool) {
	if packageStatus(t) != "" {
		if out, err := runErr(dpkg, "-P", packageName); err != nil {
			t.Errorf("cleaning up: dpkg -P %s: %v\n%s", packageName, err, out)
		}
	}
	if _, err := runErr("dpkg-statoverride", "--list", packageConfig); err == nil {
		if out, err := runErr("dpkg-statoverride", "--remove", packageConfig); err != nil {
			t.Errorf("cleaning up: dpkg-statoverride --remove %s: %v\n%s", packageConfig, err, out)
		}
	}
	// Only once dpkg has forgotten the package: its records are dpkg's.
	for _, p := range slices.Concat(manCache, leftAfterRemove) {
		if _, found := slices.BinarySearch(before, p); !found && packageStatus(t) == "" {
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	}
	if userExisted {
		return
	}
	if _, err := user.Lookup(packageUser); err == nil {
		deleteAccount(t, "userdel")
	}
	// userdel takes the user's own group along only where login.defs says so.
	if _, err := user.LookupGroup(packageUser); err == nil {
		deleteAccount(t, "groupdel")
	}
}

// deleteAccount runs userdel or groupdel on the package's account.
func deleteAccount(t testing.TB, command string) {
	path, err := lookCommand(command)
	if err != nil {
		t.Errorf("cleaning up: %v", err)
		return
	}
	if out, err := runErr(path, packageUser); err != nil {
		t.Errorf("cleaning up: %s %s: %v\n%s", command, packageUser, err, out)
	}
}
