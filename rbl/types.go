package rbl

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
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

// FailurePolicy says what a DNS failure (Error, Timeout) of a list does to
// the verdict.
type FailurePolicy uint8

const (
	// FailIgnore (the default) treats the failed list as not listed:
	// mail is never refused because DNS is down.
	FailIgnore FailurePolicy = iota
	// FailTempfail makes the verdict Tempfail when the failed list could
	// have changed the decision.
	FailTempfail
)

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

// List is one list entry: a DNS zone plus how its answers are scored. The
// same zone may appear in several entries with different filters (as in
// postscreen_dnsbl_sites); they share one DNS query per client and name.
type List struct {
	// Zone is the DNS zone queried, without the key (e.g. zen.spamhaus.org).
	Zone string
	// Type says whether the list is asked about the client's address (the
	// zero value, IPList) or its names (DomainList).
	Type ListType
	// Checks are the names a domain list is asked about; 0 means
	// DefaultDomainChecks. An IP list is asked about the address only
	// (CheckIP). A negative weight on a forgeable check is refused.
	Checks CheckSet
	// Name is what replies, logs and errors show. Defaults to Zone.
	Name string
	// Key is a DQS-style access key prepended as a label to every query.
	// It is a secret: it never appears in any output (String, GoString,
	// errors and JSON all leave it out).
	Key string `json:"-"`
	// Weight is added once when any filter without its own weight matches
	// (or, with no filters, when the answer is a listing at all). A domain
	// list adds it once however many of its names are listed: the answers
	// for all of them count as the A records of one answer.
	Weight int
	// Filters select which 127.0.0.0/8 answers count. Empty means every
	// answer that is not an error code counts. A filter with its own
	// weight adds that weight when any A record matches it; the filters
	// without one add Weight once between them.
	Filters []Filter
	// Timeout bounds this list's lookup; 0 means Config.Timeout. Entries
	// that share a query zone share one query, bounded by the largest of
	// their timeouts. The lookup runs on in the background after an early
	// decision, still bounded by Timeout.
	Timeout time.Duration
	// IPv4 and IPv6 switch an IP list on for each address family. Domain
	// lists are asked whatever the client's family, and have both false.
	IPv4, IPv6 bool
	// OnError is the failure policy.
	OnError FailurePolicy
	// Shadow lists are looked up, scored and reported, but never counted.
	Shadow bool
	// Monitor enables RFC 5782 health probes for this list.
	Monitor bool
	// DailyQueries caps the DNS queries sent to the list's query zone in
	// any 24 hours (client lookups, TXT and health probes, after cache and
	// de-duplication); 0 means no limit. Entries sharing a query zone
	// share its count, and the smallest limit among them applies. The cap
	// is enforced only by a Budget (Options.Budget).
	DailyQueries int
	// Sessions says whether the entry counts for clients that have
	// authenticated, that have not (the zero value), or for all.
	Sessions Sessions
}

// Filter matches A-record answers of a list. It is one of: a postscreen
// pattern (127.0.0.[2..11]), a CIDR (127.0.0.0/24) or an Exim-style bitmask
// (&0.0.0.4). Build one with ParseFilter.
type Filter struct {
	// Weight, when HasWeight, replaces List.Weight for this filter.
	Weight    int
	HasWeight bool
	// unexported matcher state lives in filter.go
	matcher filterMatcher
	text    string
}

// Config is the engine's configuration. Defaults are applied by NewChecker.
type Config struct {
	// Lists are the list entries, scored in this order.
	Lists []List
	// Threshold: reject when the score is >= Threshold. Default 1.
	Threshold int
	// AllowlistThreshold, when negative, accepts (Allowlisted) as soon as
	// the score is certain to be <= it. 0 disables it.
	AllowlistThreshold int
	// TagThreshold, when positive and below Threshold, is the tag level:
	// a score that reaches it but not Threshold is decided Tag. 0
	// disables it.
	TagThreshold int
	// Timeout is the default per-list timeout. Default 5s.
	Timeout time.Duration
	// FetchTXT asks for the TXT record of listed answers.
	FetchTXT bool
	// FetchAllowlistTXT asks for the TXT record of answers that an entry
	// counts with a negative weight (an allowlist), for reports like RFC
	// 8904's policy.txt, without delaying every listing by a TXT query.
	FetchAllowlistTXT bool
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

// Resolver sends one DNS question and returns the answer. It returns a
// response only for NOERROR and NXDOMAIN; every other rcode, a timeout or a
// network failure is an error.
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}
