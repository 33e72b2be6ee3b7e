package testutil

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestPollReturnsOnceCondHolds(t *testing.T) {
	calls := 0
	err := Poll(Timeout, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestPollReturnsTheLastErrorAtTheDeadline(t *testing.T) {
	calls := 0
	err := Poll(20*time.Millisecond, time.Millisecond, func() error {
		calls++
		return fmt.Errorf("attempt %d", calls)
	})
	if want := fmt.Sprintf("attempt %d", calls); err == nil || err.Error() != want || calls < 2 {
		t.Errorf("Poll = %v after %d calls, want %q", err, calls, want)
	}
}

// Writers and a reader at once, under -race.
func TestBufferConcurrentWritesAndCount(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				fmt.Fprintf(&b, "level=INFO msg=decision writer=%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := b.Count("msg=decision"); n != 200 {
		t.Errorf("Count(msg=decision) = %d, want 200", n)
	}
	if n := b.Count("msg=decision", "writer=2"); n != 50 {
		t.Errorf("Count(msg=decision, writer=2) = %d, want 50", n)
	}
	if n := b.Count("level=ERROR"); n != 0 {
		t.Errorf("Count(level=ERROR) = %d, want 0", n)
	}
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "not ready")
	}))
	defer srv.Close()
	if code, body := Get(t, nil, srv.URL); code != http.StatusServiceUnavailable || body != "not ready" {
		t.Errorf("Get = %d %q", code, body)
	}
}
