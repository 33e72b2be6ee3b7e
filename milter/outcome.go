package milter

import (
	"github.com/rblmilter/rblmilter/rbl"
)

// result is what was decided about a client: an rbl.Decision, or a
// decision taken without lookup.
type result uint8

const (
	resultAccept result = iota
	resultReject
	resultTempfail
	resultAllowlisted
	// resultSkip, resultAllow and resultBlock: the client is in the
	// policy's skip, allow or block networks.
	resultSkip
	resultAllow
	resultBlock
	// resultUnknown: the client's address could not be read (local
	// submission, unknown family).
	resultUnknown

	numResults
)

var resultNames = [numResults]string{
	resultAccept:      "accept",
	resultReject:      "reject",
	resultTempfail:    "tempfail",
	resultAllowlisted: "allowlisted",
	resultSkip:        "skip",
	resultAllow:       "allow",
	resultBlock:       "block",
	resultUnknown:     "unknown_client",
}

// String returns the result's word in logs and the result label of
// rblmilter_decisions_total.
func (r result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "invalid"
}

// resultOf is the result of an engine decision.
func resultOf(d rbl.Decision) result {
	switch d {
	case rbl.Reject:
		return resultReject
	case rbl.Tempfail:
		return resultTempfail
	case rbl.Allowlisted:
		return resultAllowlisted
	}
	return resultAccept
}

// outcome is what was decided about one client (for one transaction, when
// sender lists count).
type outcome struct {
	result result
	// verdict is nil when the client was not looked up.
	verdict *rbl.Verdict
}

// refuses reports whether the client is listed (or blocked).
func (o *outcome) refuses() bool { return o.result == resultReject || o.result == resultBlock }
