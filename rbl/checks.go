package rbl

import (
	"strings"
)

// Check is what a list entry is asked about in a client's session.
type Check uint8

const (
	// CheckIP is the client's address: what IP lists (RFC 5782 §2.1) are
	// asked about.
	CheckIP Check = iota
	// CheckClient is the client's verified name: its PTR name whose
	// forward lookup gives the client's address back, as the MTA found it.
	CheckClient
	// CheckReverseClient is the client's PTR name, verified or not.
	CheckReverseClient
	// CheckHelo is the name the client gave in HELO or EHLO.
	CheckHelo
	// CheckSender is the domain of the MAIL FROM address.
	CheckSender

	numChecks
)

var checkNames = [numChecks]string{
	CheckIP:            "ip",
	CheckClient:        "client",
	CheckReverseClient: "reverse_client",
	CheckHelo:          "helo",
	CheckSender:        "sender",
}

// String returns the check's name in the configuration, logs and metric
// labels: "ip", "client", "reverse_client", "helo" or "sender" (Postfix's
// words, as in reject_rhsbl_helo).
func (c Check) String() string {
	if c < numChecks {
		return checkNames[c]
	}
	return "unknown"
}

// ParseCheck returns the check a configuration word names.
func ParseCheck(s string) (Check, bool) {
	for c, name := range checkNames {
		if s == name {
			return Check(c), true
		}
	}
	return 0, false
}

// forgeable reports whether the client chooses the name checked, as it
// does its HELO name, its sender address and the PTR records of its own
// addresses. A list asked about such names must never allowlist: any
// client could claim a name that it lists.
func (c Check) forgeable() bool {
	return c == CheckReverseClient || c == CheckHelo || c == CheckSender
}

// CheckSet is a set of checks.
type CheckSet uint8

// Checks returns the set of the given checks.
func Checks(checks ...Check) CheckSet {
	var s CheckSet
	for _, c := range checks {
		s |= 1 << c
	}
	return s
}

// DefaultDomainChecks are the checks of a domain list that names none: the
// verified client name, the HELO name and the sender domain. The
// unverified PTR name is left out, since anyone who controls the reverse
// zone of an address can point it at a listed name.
const DefaultDomainChecks = CheckSet(1<<CheckClient | 1<<CheckHelo | 1<<CheckSender)

// nameChecks are the checks a domain list may have.
const nameChecks = CheckSet(1<<CheckClient | 1<<CheckReverseClient | 1<<CheckHelo | 1<<CheckSender)

// Has reports whether c is in s.
func (s CheckSet) Has(c Check) bool { return s&(1<<c) != 0 }

// String lists the checks as in the configuration: "client, helo".
func (s CheckSet) String() string {
	var names []string
	for c := range numChecks {
		if s.Has(c) {
			names = append(names, c.String())
		}
	}
	return strings.Join(names, ", ")
}

// forgeable returns the checks of s the client chooses.
func (s CheckSet) forgeable() CheckSet {
	var out CheckSet
	for c := range numChecks {
		if s.Has(c) && c.forgeable() {
			out |= 1 << c
		}
	}
	return out
}
