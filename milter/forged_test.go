package milter

import (
	"reflect"
	"testing"
)

func TestForgeriesFindsCopiesByPositionPerName(t *testing.T) {
	f := newForgeries("X-RBL", "mx.example.org")
	for _, h := range [][2]string{
		{"Received", "from a"},
		{"Authentication-Results", "other.example; spf=pass"},
		{"x-rbl", "score=0 reject=1"},
		{"Authentication-Results", "MX.example.org; dnswl=pass dns.zone=x"},
		{"Subject", "hi"},
		{"X-RBL", "score=-10"},
		{"Authentication-Results", " (forged)\n\tmx.example.org; dkim=pass"},
		{"X-RBL-Other", "kept"},
	} {
		f.see(h[0], h[1])
	}
	want := []headerRef{
		{"Authentication-Results", 3},
		{"X-RBL", 2},
		{"Authentication-Results", 2},
		{"X-RBL", 1},
	}
	if got := f.deletions(); !reflect.DeepEqual(got, want) {
		t.Errorf("deletions:\n got %v\nwant %v", got, want)
	}

	// The next message on the connection is counted from the start.
	f.reset()
	f.see("X-RBL", "score=0")
	if got, want := f.deletions(), []headerRef{{"X-RBL", 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after reset: got %v, want %v", got, want)
	}
}

func TestForgeriesWithoutAuthservIDKeepsAuthenticationResults(t *testing.T) {
	f := newForgeries("X-RBL", "")
	f.see("Authentication-Results", "; none")
	f.see("Authentication-Results", "mx.example.org; dnswl=pass")
	if got := f.deletions(); len(got) != 0 {
		t.Errorf("deletions %v, want none", got)
	}
}
