package milter

import (
	"net"
	"syscall"
	"testing"
)

// TestListenTCPWithoutKeepalive checks, on the accepted socket itself,
// that Listen leaves TCP keepalive off (Go turns it on by default) and
// keeps TCP_NODELAY on: go-milter may write a session's last packets back
// to back (a header, then CONTINUE), which Nagle's algorithm would hold
// until the MTA's delayed ACK.
func TestListenTCPWithoutKeepalive(t *testing.T) {
	ln, err := Listen(SocketSpec{Network: "tcp", Address: "127.0.0.1:0"}, SocketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keepalive, nodelay int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		if keepalive, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); gerr != nil {
			return
		}
		nodelay, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if keepalive != 0 || nodelay == 0 {
		t.Errorf("accepted socket: SO_KEEPALIVE %d, TCP_NODELAY %d; want keepalive off, nodelay on", keepalive, nodelay)
	}
}
