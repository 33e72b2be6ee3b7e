package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSocketSpec(t *testing.T) {
	for in, want := range map[string]socketSpec{
		"inet:127.0.0.1:8891":   {"tcp", "127.0.0.1:8891"},
		"inet:8891@127.0.0.1":   {"tcp", "127.0.0.1:8891"},
		"inet:8891@localhost":   {"tcp", "localhost:8891"},
		"inet:[::1]:8891":       {"tcp", "[::1]:8891"},
		"inet6:8891@[::1]":      {"tcp6", "[::1]:8891"},
		"inet6:8891@::1":        {"tcp6", "[::1]:8891"},
		"INET:localhost:25":     {"tcp", "localhost:25"},
		"unix:/run/milter.sock": {"unix", "/run/milter.sock"},
		"local:/run/m.sock":     {"unix", "/run/m.sock"},
		"inet:0@127.0.0.1":      {"tcp", "127.0.0.1:0"},
	} {
		got, err := parseSocketSpec(in)
		if err != nil || got != want {
			t.Errorf("parseSocketSpec(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"127.0.0.1:8891":      `unknown kind "127.0.0.1"`,
		"/run/milter.sock":    "want inet:HOST:PORT",
		"tcp:127.0.0.1:8891":  `unknown kind "tcp"`,
		"unix:":               "empty unix socket path",
		"inet:8891":           "want HOST:PORT",
		"inet:127.0.0.1:http": `port "http"`,
		"inet:70000@host":     `port "70000"`,
		"inet:@host":          "want PORT@HOST",
		"inet::25":            "missing host",
	} {
		_, err := parseSocketSpec(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
			t.Errorf("parseSocketSpec(%q): error %v, want one quoting the spec and saying %q", in, err, want)
		}
	}
}

func TestListenSocketReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "m.sock")
	ln, err := listenSocket(socketSpec{"unix", sock})
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a killed process: the socket file stays behind.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = listenSocket(socketSpec{"unix", sock})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()

	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenSocket(socketSpec{"unix", file}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listening over a regular file: error %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("regular file was overwritten")
	}
}
