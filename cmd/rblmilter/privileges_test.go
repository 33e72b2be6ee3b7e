package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	gomilter "github.com/emersion/go-milter"
)

// fakeIdentity is an identity whose accounts and ids the test sets, and
// which records the switch instead of making it.
type fakeIdentity struct {
	euid, egid int
	users      map[string]*user.User
	groups     map[string]*user.Group

	mu  sync.Mutex
	set [][]int
}

func (f *fakeIdentity) Geteuid() int { return f.euid }
func (f *fakeIdentity) Getegid() int { return f.egid }

func (f *fakeIdentity) LookupUser(name string) (*user.User, error) {
	if u, ok := f.users[name]; ok {
		return u, nil
	}
	return nil, user.UnknownUserError(name)
}

func (f *fakeIdentity) LookupGroup(name string) (*user.Group, error) {
	if g, ok := f.groups[name]; ok {
		return g, nil
	}
	return nil, user.UnknownGroupError(name)
}

func (f *fakeIdentity) SetIDs(uid, gid int, groups []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, append([]int{uid, gid}, groups...))
	return nil
}

// Usernames no real machine has, so that User.GroupIds finds only the
// primary group.
func newFakeIdentity(euid int) *fakeIdentity {
	return &fakeIdentity{
		euid: euid, egid: euid,
		users: map[string]*user.User{
			"nobody":  {Uid: "65534", Gid: "65534", Username: "rblmilter-test-nobody"},
			"root":    {Uid: "0", Gid: "0", Username: "rblmilter-test-root"},
			"mailer":  {Uid: "1001", Gid: "1001", Username: "rblmilter-test-mailer"},
			"nogroup": {Uid: "1002", Gid: "", Username: "rblmilter-test-nogroup"},
		},
		groups: map[string]*user.Group{
			"nogroup": {Gid: "65534", Name: "nogroup"},
			"postfix": {Gid: "120", Name: "postfix"},
		},
	}
}

func TestPlanPrivileges(t *testing.T) {
	tests := []struct {
		name        string
		euid        int
		user, group string
		accounts    func(*fakeIdentity)
		want        privilegePlan
		wantErr     string
	}{
		{name: "root, no user: nobody", euid: 0,
			want: privilegePlan{change: true, uid: 65534, gid: 65534, groups: []int{65534}, user: "nobody", defaulted: true}},
		{name: "root, no user, group set", euid: 0, group: "postfix",
			want: privilegePlan{change: true, uid: 65534, gid: 120, groups: []int{65534, 120}, user: "nobody", group: "postfix", defaulted: true}},
		{name: "root, user set", euid: 0, user: "mailer",
			want: privilegePlan{change: true, uid: 1001, gid: 1001, groups: []int{1001}, user: "mailer"}},
		{name: "root, user and group", euid: 0, user: "mailer", group: "postfix",
			want: privilegePlan{change: true, uid: 1001, gid: 120, groups: []int{1001, 120}, user: "mailer", group: "postfix"}},
		{name: "root, user = root keeps root", euid: 0, user: "root",
			want: privilegePlan{uid: 0, gid: 0, groups: []int{0}, user: "root", root: true}},
		{name: "root, no user and no nobody", euid: 0, accounts: func(f *fakeIdentity) { delete(f.users, "nobody") },
			wantErr: `user: rblmilter was started as root and switches to an unprivileged user after binding its sockets, but no user is set and "nobody" does not exist: set user = "NAME" (or user = "root" to keep running as root)`},
		{name: "root, unknown user", euid: 0, user: "ghost", wantErr: "user: user: unknown user ghost"},
		{name: "root, unknown group", euid: 0, user: "mailer", group: "ghosts", wantErr: "group: group: unknown group ghosts"},
		{name: "root, user without a group", euid: 0, user: "nogroup", wantErr: `user: "nogroup" has no group on this machine; set group too`},
		{name: "unprivileged, nothing set", euid: 1001, want: privilegePlan{uid: -1, gid: -1}},
		{name: "unprivileged, already that user", euid: 1001, user: "mailer", want: privilegePlan{uid: -1, gid: -1, user: "mailer"}},
		{name: "unprivileged, another user", euid: 1001, user: "nobody",
			wantErr: `user/group: switching to "nobody"/"" needs root (running as uid 1001)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newFakeIdentity(tt.euid)
			if tt.accounts != nil {
				tt.accounts(id)
			}
			got, err := planPrivileges(tt.user, tt.group, id)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The daemon, run as (fake) root without a user, switches to nobody after
// binding and says so; with user = "root" it stays and warns.
func TestDaemonDropsRootByDefault(t *testing.T) {
	for _, tc := range []struct {
		extra   string
		wantSet [][]int
		log     []string
	}{
		{"", [][]int{{65534, 65534, 65534}}, []string{"level=INFO", `msg="dropped root privileges"`, "user=nobody", "uid=65534", `reason="started as root with no user set"`}},
		{`user = "mailer"`, [][]int{{1001, 1001, 1001}}, []string{"level=INFO", `msg="dropped root privileges"`, "user=mailer", "reason=user"}},
		{`user = "root"`, nil, []string{"level=WARN", "running as root", "user=root"}},
	} {
		t.Run(tc.extra, func(t *testing.T) {
			dns := newDNSBL(t)
			cfg, _ := unixConfig(t, t.TempDir(), dns, tc.extra)
			id := newFakeIdentity(0)
			env, log := watchedEnv(t)
			env.identity = id
			env.lookupUser = func(string) error { return nil }
			stop := make(chan os.Signal, 1)
			env.signals = func() (<-chan os.Signal, func()) { return stop, func() {} }
			exit := make(chan int, 1)
			go func() { exit <- run(t.Context(), []string{"-config", cfg}, env) }()
			log.wait(t, "msg=listening")
			log.wait(t, tc.log...)
			stop <- syscall.SIGTERM
			if code := <-exit; code != 0 {
				t.Fatalf("exit %d:\n%s", code, log)
			}
			id.mu.Lock()
			defer id.mu.Unlock()
			if !reflect.DeepEqual(id.set, tc.wantSet) {
				t.Errorf("switched to %v, want %v", id.set, tc.wantSet)
			}
		})
	}
}

// readableTempDir is a temporary directory that every user may enter and
// read (t.TempDir is mode 0700): for configs a daemon that dropped root
// must reread.
func readableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rblmilter-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// procIDs returns the real, effective, saved and file-system uid and gid
// of pid, as /proc shows them.
func procIDs(t *testing.T, pid int) (uid, gid string) {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Join(strings.Fields(v), " ")
		}
		if v, ok := strings.CutPrefix(line, "Gid:"); ok {
			gid = strings.Join(strings.Fields(v), " ")
		}
	}
	return uid, gid
}

// The built binary, started by root with a config that names no user,
// runs as nobody, and warns that its (root-only) config file cannot be
// reread.
func TestBinaryAsRootRunsAsNobodyByDefault(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	dns := newDNSBL(t, "192.0.2.1")
	// The temp dir's mode is 0700: nobody cannot read the config.
	cfg, sock := unixConfig(t, t.TempDir(), dns, "")
	b := startBinary(t, cfg)
	if uid, gid := procIDs(t, b.cmd.Process.Pid); uid != "65534 65534 65534 65534" || gid != "65534 65534 65534 65534" {
		t.Errorf("Uid %q Gid %q, want all 65534 (nobody/nogroup)", uid, gid)
	}
	b.log.wait(t, `msg="dropped root privileges"`, "user=nobody")
	b.log.wait(t, "level=WARN", "config file is not readable", "config="+cfg)
	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Errorf("as nobody, a listed client: %+v", act)
	}
	b.stop(t)
}

// user = "root" is the explicit way to keep root.
func TestBinaryUserRootKeepsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dns := newDNSBL(t)
	cfg, _ := unixConfig(t, t.TempDir(), dns, `user = "root"`)
	b := startBinary(t, cfg)
	if uid, _ := procIDs(t, b.cmd.Process.Pid); uid != "0 0 0 0" {
		t.Errorf("Uid %q, want root", uid)
	}
	b.log.wait(t, "level=WARN", "running as root")
	b.stop(t)
}

// The first-screen command: root runs rblmilter with no config at all on
// a fresh machine. It must start on the embedded default, drop to nobody,
// answer, and stop cleanly. It runs in a network namespace of its own
// (only loopback, so the default listeners cannot collide with anything
// and no DNS query can leave), reached through a unix socket.
func TestBinaryFirstScreenAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/etc/rblmilter/rblmilter.toml"); err == nil {
		t.Skip("/etc/rblmilter/rblmilter.toml exists: not a fresh machine")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip")
	}
	bin := rblmilterBinary(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "milter.sock")
	b := startCommand(t, exec.Command(unshare, "--net", "sh", "-c", `"$0" link set lo up && exec "$1" -listen "$2"`, ip, bin, "unix:"+sock))
	select {
	case err := <-b.done:
		b.done <- err
		if strings.Contains(b.log.String(), "Operation not permitted") {
			t.Skipf("cannot create a network namespace here: %s", b.log)
		}
		t.Fatalf("rblmilter exited at start (%v):\n%s", err, b.log)
	case <-waitLine(b.log, "msg=listening"):
	}
	b.log.wait(t, `config="embedded default config"`)
	b.log.wait(t, `msg="dropped root privileges"`, "user=nobody", `reason="started as root with no user set"`)
	b.log.wait(t, `msg="metrics listening"`, "addr=127.0.0.1:9890")
	// Loopback clients are skipped by default: no DNS query is needed.
	if act := connectAs(t, "unix", sock, "127.0.0.1"); act.Code != gomilter.ActAccept {
		t.Errorf("loopback client: %+v", act)
	}
	b.log.wait(t, "msg=decision", "ip=127.0.0.1", "decision=skip")
	b.stop(t)
}
