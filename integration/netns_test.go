//go:build integration && linux

package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netns is a network namespace the test created: only a loopback
// interface, carrying the addresses the test gave it. Programs run in it
// with `ip netns exec`; the test's own connections enter it with setns on
// a locked thread, so everything the test sends stays inside it.
type netns struct {
	name string
	path string
	ip   string
}

// newNetns creates a network namespace with lo up and addrs (CIDR form,
// e.g. "192.0.2.1/32", "2001:db8::1/128") on lo, and deletes it when the
// test ends.
func newNetns(t testing.TB, addrs ...string) *netns {
	t.Helper()
	ip := requireCommands(t, "ip")["ip"]
	n := &netns{name: fmt.Sprintf("rblmilter-test-%d-%s", os.Getpid(), newToken()[:6]), ip: ip}
	n.path = filepath.Join("/run/netns", n.name)
	if out, err := runErr(ip, "netns", "add", n.name); err != nil {
		missing(t, "cannot create a network namespace (ip netns add): %v %s", err, strings.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := runErr(ip, "netns", "delete", n.name); err != nil {
			t.Errorf("ip netns delete %s: %v %s", n.name, err, out)
		}
	})
	run(t, ip, "-n", n.name, "link", "set", "lo", "up")
	for _, a := range addrs {
		args := []string{ip, "-n", n.name, "addr", "add", a, "dev", "lo"}
		if strings.Contains(a, ":") {
			// No duplicate address detection: the address is usable at once.
			args = append(args, "nodad")
		}
		run(t, args...)
	}
	return n
}

// exec is the command prefix that runs a program inside the namespace.
// `ip netns exec` execs the program, so its PID is the program's.
func (n *netns) exec() []string { return []string{n.ip, "netns", "exec", n.name} }

// dial connects from inside the namespace: the socket is created by a
// thread that has entered the namespace, and a socket stays in the
// namespace it was created in.
func (n *netns) dial(ctx context.Context, network, local, remote string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, restored, err := n.dialLocked(ctx, network, local, remote)
		if restored {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread is still in the test namespace; leaving it
		// locked makes the runtime end it with this goroutine.
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// dialLocked runs on a locked thread; restored reports whether the thread
// is back in the test's own network namespace.
func (n *netns) dialLocked(ctx context.Context, network, local, remote string) (conn net.Conn, restored bool, err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer orig.Close()
	target, err := os.Open(n.path)
	if err != nil {
		return nil, true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("setns %s: %w", n.path, err)
	}
	conn, err = dialFrom(ctx, network, local, remote)
	restored = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil
	return conn, restored, err
}
