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
	// resultTag: the score reached the tag level, not the threshold.
	resultTag
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
	resultTag:         "tag",
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
	case rbl.Tag:
		return resultTag
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

// stamped reports whether the messages of a client with this outcome get
// the results header: every message with p.ResultsHeader, else those of
// tag-level clients and, under ActionTag, of refused ones.
func (o *outcome) stamped(p *Policy) bool {
	return p.ResultsHeader || o.result == resultTag || p.Action == ActionTag && o.refuses()
}

// refuses reports whether the client is listed (or blocked).
func (o *outcome) refuses() bool { return o.result == resultReject || o.result == resultBlock }
