package milter

import (
	"github.com/rblmilter/rblmilter/rbl"
)

// Result is what the milter decided about a client: an rbl.Decision, or
// a decision taken without lookup. The session, its logs and metrics and
// `rblmilter check` all take it from here, so that they cannot drift.
type Result uint8

// The results, in the order of the result label's series.
const (
	ResultAccept Result = iota
	ResultReject
	ResultTempfail
	ResultAllowlisted
	// ResultTag: the score reached the tag level, not the threshold.
	ResultTag
	// ResultSkip, ResultAllow and ResultBlock: the client is in the
	// policy's skip, allow or block networks.
	ResultSkip
	ResultAllow
	ResultBlock
	// ResultUnknown: the client's address could not be read (local
	// submission, unknown family).
	ResultUnknown

	numResults
)

var resultNames = [numResults]string{
	ResultAccept:      "accept",
	ResultReject:      "reject",
	ResultTempfail:    "tempfail",
	ResultAllowlisted: "allowlisted",
	ResultTag:         "tag",
	ResultSkip:        "skip",
	ResultAllow:       "allow",
	ResultBlock:       "block",
	ResultUnknown:     "unknown_client",
}

// String returns the result's word in logs and the result label of
// rblmilter_decisions_total.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "invalid"
}

// Refuses reports whether a client with this result is not let through
// when the action is reject: it is listed, blocked, or a list with
// on_error = tempfail failed. (Action tag and log accept every client;
// exempt recipients and skip_authenticated pass at RCPT TO.)
func (r Result) Refuses() bool {
	return r == ResultReject || r == ResultTempfail || r == ResultBlock
}

// ResultOf is the result of an engine decision.
func ResultOf(d rbl.Decision) Result {
	switch d {
	case rbl.Reject:
		return ResultReject
	case rbl.Tempfail:
		return ResultTempfail
	case rbl.Allowlisted:
		return ResultAllowlisted
	case rbl.Tag:
		return ResultTag
	}
	return ResultAccept
}

// outcome is what was decided about one client (for one transaction, when
// sender lists count).
type outcome struct {
	result Result
	// verdict is nil when the client was not looked up.
	verdict *rbl.Verdict
}

// stamped reports whether the messages of a client with this outcome get
// the results header: every message with p.ResultsHeader, else those of
// tag-level clients and, under ActionTag, of refused ones.
func (o *outcome) stamped(p *Policy) bool {
	return p.ResultsHeader || o.result == ResultTag || p.Action == ActionTag && o.listed()
}

// listed reports whether the client is listed (or blocked): it gets the
// listing reply, or under ActionTag the header.
func (o *outcome) listed() bool { return o.result == ResultReject || o.result == ResultBlock }
