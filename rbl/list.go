package rbl

import (
	"fmt"
	"strings"
	"time"
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

// String returns "ignore" or "tempfail", as written in the config file.
func (p FailurePolicy) String() string {
	if p == FailTempfail {
		return "tempfail"
	}
	return "ignore"
}

// String returns the display name, never the key.
func (l List) String() string { return l.display() }

// display is String without copying the List, for the hot paths.
func (l *List) display() string {
	// A name that quotes the key (NewChecker refuses one, but a List may
	// be printed before that) shows as the zone.
	if l.Name != "" && (l.Key == "" || !containsFold(l.Name, l.Key)) {
		return l.Name
	}
	return l.Zone
}

// containsFold is strings.Contains ignoring case, without allocating.
func containsFold(s, sub string) bool { return indexFold(s, sub) >= 0 }

// indexFold is strings.Index ignoring case, without allocating.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// GoString keeps the key out of %#v output: a set key shows as "[key]".
func (l List) GoString() string {
	key, name := "", l.Name
	if l.Key != "" {
		key = "[key]"
		if containsFold(name, l.Key) {
			name = "[name quotes the key]"
		}
	}
	return fmt.Sprintf("rbl.List{Zone: %q, Type: %s, Checks: %q, Name: %q, Key: %q, Weight: %d, Filters: %v, Timeout: %s, IPv4: %v, IPv6: %v, OnError: %s, Shadow: %v, Monitor: %v, DailyQueries: %d}",
		l.Zone, l.Type, l.Checks, name, key, l.Weight, l.Filters, l.Timeout, l.IPv4, l.IPv6, l.OnError, l.Shadow, l.Monitor, l.DailyQueries)
}

// queryZoneKey is the zone actually asked, as the engine keys it (cache,
// health, budget, query names): the key label, if any, then the zone, in
// lower case and without a trailing dot. A secret when a key is set.
func (l *List) queryZoneKey() string {
	qzone := l.Zone
	if l.Key != "" {
		qzone = l.Key + "." + l.Zone
	}
	return strings.ToLower(strings.TrimSuffix(qzone, "."))
}

// normalizedZone is the zone without the key, spelt as queryZoneKey
// spells it.
func (l *List) normalizedZone() string { return strings.ToLower(strings.TrimSuffix(l.Zone, ".")) }

// families returns the address families an IP list is asked about: both
// when neither is switched on, so that the zero List is usable.
func (l *List) families() (v4, v6 bool) {
	if !l.IPv4 && !l.IPv6 {
		return true, true
	}
	return l.IPv4, l.IPv6
}

// timeoutOr returns the list's own Timeout, or def when it has none.
func (l *List) timeoutOr(def time.Duration) time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return def
}

// CheckForgeable returns an error when the list would let a client
// allowlist itself: a negative weight (of the list or of one of its
// filters) on a check whose name the client chooses (helo, sender,
// reverse_client). Config loaders use it to name the list themselves.
func (l *List) CheckForgeable() error {
	forged := l.Checks.forgeable()
	if forged == 0 {
		return nil
	}
	w := l.Weight
	if w >= 0 {
		for i := range l.Filters {
			if l.Filters[i].HasWeight && l.Filters[i].Weight < 0 {
				w = l.Filters[i].Weight
				break
			}
		}
	}
	if w >= 0 {
		return nil
	}
	return fmt.Errorf("negative weight %d on checks %s: a client can claim any HELO name, sender domain or PTR name, so it could allowlist itself; a domain allowlist may only check \"client\" (the verified client name)", w, forged)
}

// rangeGiven returns the least and the greatest weight the list can add
// once codes (the listed codes of the answers in so far, perhaps none) are
// joined by the codes of answers still to come: the filters codes match
// stay matched, the others may match or not. A domain list's names count
// as the records of one answer, so this bounds it while some names are
// pending.
func (l *List) rangeGiven(codes codeSet) (lo, hi int) {
	add := func(w int) {
		if w < 0 {
			lo += w
		} else {
			hi += w
		}
	}
	if codes.len() == 0 {
		return l.weightRange()
	}
	if len(l.Filters) == 0 {
		return l.Weight, l.Weight
	}
	defaultMatched, defaultOpen := false, false
	for fi := range l.Filters {
		f := &l.Filters[fi]
		matched := false
		for i := range codes.len() {
			if f.matcher.match(codes.at(i)) {
				matched = true
				break
			}
		}
		switch {
		case matched && f.HasWeight:
			lo += f.Weight
			hi += f.Weight
		case matched:
			defaultMatched = true
		case f.HasWeight:
			add(f.Weight)
		default:
			defaultOpen = true
		}
	}
	switch {
	case defaultMatched:
		lo += l.Weight
		hi += l.Weight
	case defaultOpen:
		add(l.Weight)
	}
	return lo, hi
}

// weightRange returns the least and the greatest weight the list can add:
// the bounds used to decide early while it is still pending.
func (l *List) weightRange() (lo, hi int) {
	add := func(w int) {
		if w < 0 {
			lo += w
		} else {
			hi += w
		}
	}
	if len(l.Filters) == 0 {
		add(l.Weight)
		return lo, hi
	}
	hasDefault := false
	for i := range l.Filters {
		if l.Filters[i].HasWeight {
			add(l.Filters[i].Weight)
		} else {
			hasDefault = true
		}
	}
	if hasDefault {
		add(l.Weight)
	}
	return lo, hi
}

// ListType says what a list is asked about.
type ListType uint8

const (
	// IPList is an RFC 5782 IP address list (DNSBL, DNSWL), asked about
	// the client's address.
	IPList ListType = iota
	// DomainList is an RFC 5782 §2.3 domain list (RHSBL: Spamhaus DBL and
	// ZRD, SURBL, URIBL), asked about the names the client shows.
	DomainList
)

// String returns "ip" or "domain", as written in the configuration.
func (t ListType) String() string {
	if t == DomainList {
		return "domain"
	}
	return "ip"
}
