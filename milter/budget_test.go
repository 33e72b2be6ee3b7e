package milter

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestBudgetStartsNoTimerUntilAsked(t *testing.T) {
	parent := context.WithValue(t.Context(), ctxKey{}, "v")
	b := newBudget(parent, time.Hour)
	if !b.deadline.IsZero() {
		t.Error("newBudget read the clock: a decision from the cache never needs it")
	}
	if d, ok := b.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("Deadline() = %v, %v; want about an hour from now", d, ok)
	}
	if got := b.Value(ctxKey{}); got != "v" {
		t.Errorf("Value = %v, want the parent's", got)
	}
	if b.ctx != nil {
		t.Error("Deadline or Value started the timer")
	}
	b.release()
	// Released unstarted, it is its parent: usable, not done.
	select {
	case <-b.Done():
		t.Error("released budget is done while its parent is not")
	default:
	}
	if err := b.Err(); err != nil {
		t.Errorf("released budget: Err() = %v", err)
	}
}

func TestBudgetEndsAtItsDeadline(t *testing.T) {
	b := newBudget(t.Context(), 20*time.Millisecond)
	defer b.release()
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("budget of 20ms not done after 10s")
	}
	if err := b.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want DeadlineExceeded", err)
	}
}

func TestBudgetPastDeadlineReadsAsOne(t *testing.T) {
	b := newBudget(t.Context(), -time.Second)
	defer b.release()
	if err := b.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want DeadlineExceeded", err)
	}
}

func TestBudgetFollowsItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(t.Context())
	b := newBudget(parent, time.Hour)
	defer b.release()
	done := b.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("budget not done 10s after its parent was cancelled")
	}
	if err := b.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want Canceled", err)
	}
}

func TestBudgetReleaseStopsTheTimer(t *testing.T) {
	b := newBudget(t.Context(), time.Hour)
	done := b.Done()
	b.release()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("started budget not done after release")
	}
	if err := b.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("after release: Err() = %v, want Canceled", err)
	}
}
