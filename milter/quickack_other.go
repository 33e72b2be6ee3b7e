//go:build !linux

package milter

import "syscall"

// quickACK is Linux-only; elsewhere delayed ACKs stay as the OS sets them.
func quickACK(syscall.RawConn) {}
