package main

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

// loopbackHost fails unless hostport's host is a loopback address.
func loopbackHost(t *testing.T, what, hostport string) {
	t.Helper()
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%s: %q: %v", what, hostport, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		t.Errorf("%s listens on %q: not loopback", what, hostport)
	}
}

// Nothing rblmilter opens by default is reachable from the network: the
// milter socket and the metrics listener (and pprof, which is off and
// could only be served there) bind to loopback, in the embedded default,
// in a config that sets neither, and in contrib/rblmilter.toml.
func TestListenersDefaultToLoopback(t *testing.T) {
	sources := map[string][]byte{"embedded default": defaultConfigFile}
	for _, path := range []string{"testdata/minimal.toml", "../../contrib/rblmilter.toml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sources[path] = data
	}
	for name, data := range sources {
		cfg, err := parseConfig(data, testParseEnv())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Listen.Network != "tcp" {
			t.Errorf("%s: milter listens on %s", name, cfg.Listen)
		}
		loopbackHost(t, name+": milter", cfg.Listen.Address)
		loopbackHost(t, name+": metrics", cfg.Metrics.Listen)
		if cfg.Metrics.Pprof {
			t.Errorf("%s: pprof is on", name)
		}
	}
}

// A unix socket gets mode 0660 unless socket_mode says otherwise, and the
// configured group, so that only the MTA's group can connect.
func TestUnixSocketModeAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket another group")
	}
	for _, tc := range []struct {
		extra string
		mode  os.FileMode
		gid   uint32
	}{
		{`socket_group = "nogroup"`, 0o660, 65534},
		{"socket_group = \"65534\"\nsocket_mode = \"0600\"", 0o600, 65534},
		{`socket_mode = "0666"`, 0o666, 0},
	} {
		t.Run(tc.extra, func(t *testing.T) {
			dns := newDNSBL(t)
			cfg, sock := unixConfig(t, t.TempDir(), dns, tc.extra)
			d := startInProcess(t, cfg, sock)
			fi, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tc.mode || st.Gid != tc.gid {
				t.Errorf("socket %v gid %d, want mode %v gid %d", fi.Mode(), st.Gid, tc.mode, tc.gid)
			}
			d.stop(t, syscall.SIGTERM)
		})
	}
}
