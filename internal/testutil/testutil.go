// Package testutil is the scaffolding that the project's tests share:
// waiting for a condition with a deadline instead of sleeping, a buffer a
// logger or a command writes while the test reads it, and reading an HTTP
// endpoint. Only tests import it.
package testutil

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// Timeout is how long WaitFor waits: generous, so that a loaded
	// machine (two cores shared with other work, -race) fails only a
	// condition that never comes.
	Timeout = 10 * time.Second
	// Interval is how often WaitFor checks its condition.
	Interval = 5 * time.Millisecond
)

// Poll calls cond every interval until it returns nil or timeout has
// passed, and returns cond's last error then.
func Poll(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-ticker.C
	}
}

// errNotYet is what WaitFor's condition says until it holds.
type errNotYet struct{}

func (errNotYet) Error() string { return "not yet" }

// WaitFor polls cond until it holds, and fails the test, naming what it
// waited for, when Timeout passes first.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := Poll(Timeout, Interval, func() error {
		if cond() {
			return nil
		}
		return errNotYet{}
	})
	if err != nil {
		t.Fatalf("waited %v for %s", Timeout, what)
	}
}

// Buffer is a bytes.Buffer that a logger or a command may write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p under the lock.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many lines written so far contain every one of parts.
func (b *Buffer) Count(parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(b.String(), "\n") {
		if line != "" && ContainsAll(line, parts...) {
			n++
		}
	}
	return n
}

// ContainsAll reports whether s contains every one of parts.
func ContainsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// Get fetches url with client (nil: http.DefaultClient) and returns the
// status code and the body; a failed request fails the test.
func Get(t testing.TB, client *http.Client, url string) (int, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
