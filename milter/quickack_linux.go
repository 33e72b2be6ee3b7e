package milter

import "syscall"

// quickACK turns delayed ACKs off until the kernel turns them back on,
// which it does by itself; hence it is re-armed before every read.
func quickACK(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
