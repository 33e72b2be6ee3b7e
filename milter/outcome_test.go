package milter

import (
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
)

// TestResultOfKeepsDecisionWords: an engine decision keeps its word as a
// result, so that logs, metrics and `rblmilter check` say what the engine
// decided.
func TestResultOfKeepsDecisionWords(t *testing.T) {
	for _, d := range []rbl.Decision{rbl.Accept, rbl.Reject, rbl.Tempfail, rbl.Allowlisted, rbl.Tag} {
		if got := ResultOf(d).String(); got != d.String() {
			t.Errorf("ResultOf(%s) = %s", d, got)
		}
	}
}

// TestResultRefuses: reject, tempfail and block refuse, nothing else; and
// every result has its own word.
func TestResultRefuses(t *testing.T) {
	seen := map[string]Result{}
	for r := Result(0); r < numResults; r++ {
		want := r == ResultReject || r == ResultTempfail || r == ResultBlock
		if r.Refuses() != want {
			t.Errorf("%s.Refuses() = %v, want %v", r, r.Refuses(), want)
		}
		if prev, dup := seen[r.String()]; dup || r.String() == "" {
			t.Errorf("result %d is named %q, as is %d", r, r.String(), prev)
		}
		seen[r.String()] = r
	}
	if got := numResults.String(); got != "invalid" {
		t.Errorf("out of range result = %q", got)
	}
}
