package rbl

import (
	"net/netip"
	"time"
)

// Outcome is how one list lookup ended. Every lookup ends in exactly one.
type Outcome uint8

const (
	// Pending means the lookup had not finished when the verdict was
	// decided (early decision, or the caller's deadline).
	Pending Outcome = iota
	// NotListed is NXDOMAIN, or NOERROR without A records, or A records
	// in 127.0.0.0/8 that match none of the list's filters.
	NotListed
	// Listed is one or more A records in 127.0.0.0/8 that pass the filters.
	Listed
	// Refused is a known operator error code (127.255.255.0/24,
	// 127.0.1.255, 127.0.2.255, 127.0.0.255): the operator refuses to
	// answer us. Never a listing.
	Refused
	// Bogus is an A record outside 127.0.0.0/8: a resolver that rewrites
	// NXDOMAIN. Never a listing.
	Bogus
	// Error is SERVFAIL, REFUSED, a network error or a malformed answer,
	// handled by the list's failure policy.
	Error
	// Timeout is a lookup that ran out of time, handled like Error.
	Timeout
	// Disabled means the list was not asked: it is marked unhealthy, or
	// the address family is switched off for it.
	Disabled
	// OverBudget means the list was not asked because its query zone has
	// sent its DailyQueries in the last 24 hours (see Budget). Like
	// Disabled it adds nothing: the client is not refused for it.
	OverBudget
	// NoName means a domain list was not asked: the client has shown none
	// of the names it checks, or none that can be asked.
	NoName
	// NotAuthenticated means an IP list with Sessions =
	// SessionsAuthenticated was not asked: the client has not
	// authenticated (Session.Authenticated).
	NotAuthenticated
)

var outcomeNames = [...]string{
	Pending:    "pending",
	NotListed:  "not_listed",
	Listed:     "listed",
	Refused:    "refused",
	Bogus:      "bogus",
	Error:      "error",
	Timeout:    "timeout",
	Disabled:   "disabled",
	OverBudget: "over_budget",
	NoName:     "no_name",
	// An authenticated-only list not asked for a client that has not
	// authenticated.
	NotAuthenticated: "not_authenticated",
}

// String returns the outcome's name in logs, metric labels and JSON, the
// constant's name in snake case: "pending", "not_listed", "listed",
// "refused", "bogus", "error", "timeout", "disabled", "over_budget",
// "no_name", "not_authenticated".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Failed reports whether the outcome is a DNS failure (Error or Timeout),
// which the list's FailurePolicy handles.
func (o Outcome) Failed() bool { return o == Error || o == Timeout }

// Decision is the overall answer for one client.
type Decision uint8

const (
	// Accept: the score stayed below the threshold.
	Accept Decision = iota
	// Reject: the score reached the threshold.
	Reject
	// Tempfail: a list with FailTempfail failed and could have changed
	// the decision.
	Tempfail
	// Allowlisted: the score fell to the allowlist threshold or below.
	Allowlisted
	// Tag: the score reached TagThreshold but not Threshold; the client
	// is accepted, its messages marked for a later filter.
	Tag
)

var decisionNames = [...]string{
	Accept:      "accept",
	Reject:      "reject",
	Tempfail:    "tempfail",
	Allowlisted: "allowlisted",
	Tag:         "tag",
}

// String returns "accept", "reject", "tempfail", "allowlisted" or "tag".
func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "unknown"
}

// Result is one list entry's part of a Verdict.
type Result struct {
	// List points at the entry in the Checker's configuration.
	List *List
	// Outcome is how the lookup ended; Pending when the verdict was
	// decided first.
	Outcome Outcome
	// Codes are every A record of the answer (Listed, Refused, Bogus).
	Codes []netip.Addr
	// TXT is the list's TXT record, when fetched.
	TXT string
	// Weight is what this entry added to the score (0 unless counted).
	Weight int
	// Matched is the weight the answer is worth by the list's filters,
	// whether counted or not: for a Shadow list it is what the list would
	// have added.
	Matched int
	// Duration of the lookup; 0 when served from the cache.
	Duration time.Duration
	// Cached is true when the answer came from the cache.
	Cached bool
	// Err describes Error/Timeout outcomes; it never contains the key.
	// errors.Is(Err, ErrTimeout) holds for timeouts.
	Err error
	// Check is what the result is about: CheckIP for an IP list; for a
	// domain list the check whose name was listed (the first in the order
	// of the Check constants), else the first one asked.
	Check Check
	// Name is the name asked of a domain list that Check refers to (the
	// listed one when Listed), normalized; empty for IP lists.
	Name string
}

// Verdict is the answer for one client address. A listing is a value here,
// not an error.
type Verdict struct {
	// IP is the address checked, as given.
	IP       netip.Addr
	Decision Decision
	// Score is the sum of the counted weights of the answers known when
	// the decision was taken (shadow lists and failures add nothing).
	Score int
	// Early is true when the decision was taken before every list answered
	// (some Results are Pending, or a domain list listed for one name
	// still waits for others).
	Early bool
	// Settled is true when nothing can change Decision: neither the
	// lookups still pending nor the names of the checks the caller said
	// are still to come. Check's verdicts are always settled; an unsettled
	// Session verdict's Decision is only the score's so far.
	Settled bool
	// Results has one entry per configured list, in configuration order.
	Results []Result
	// Duration is the time Check took.
	Duration time.Duration
}
