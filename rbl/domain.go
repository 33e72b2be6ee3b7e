package rbl

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// maxNameLen is the longest domain name DNS carries, without the root's
// trailing dot (RFC 1035 §2.3.4 and RFC 2181 §11).
const maxNameLen = 253

// NameError says why a name is not asked of domain lists.
type NameError struct {
	// Name is the name as given (shortened when very long).
	Name string
	// Reason says what is wrong with it, e.g. "a single label".
	Reason string
}

// Error quotes the name and says why it was not asked.
func (e *NameError) Error() string { return strconv.Quote(e.Name) + ": " + e.Reason }

// maxShownName bounds the part of a rejected name that errors and logs
// quote: a client chooses it.
const maxShownName = 80

func nameError(name, reason string) *NameError {
	if len(name) > maxShownName {
		name = name[:maxShownName] + "..."
	}
	return &NameError{Name: name, Reason: reason}
}

// idnaLookup maps and checks names that are not plain lower-case LDH
// ASCII: UTS #46 non-transitional processing as RFC 5891 §5 says a lookup
// does (case folding, width mapping, NFC), STD3 rules (letters, digits and
// hyphens only), the hyphen and joiner rules and the Bidi rule.
var idnaLookup = idna.Lookup

// normalizeName returns name as domain lists are asked about it: lower
// case, IDNs as A-labels, without the trailing dot. A name that cannot be
// asked (an address literal, a single label, localhost, too long, an empty
// label, characters no host name has, invalid IDNA) is an error saying
// why. The names an SMTP client shows (HELO, sender domain) are its own
// choice, so nothing about them is trusted.
func normalizeName(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return "", nameError(name, "empty name")
	}
	if n[0] == '[' {
		return "", nameError(name, "an address literal, not a name")
	}
	if looksLikeAddr(n) {
		if _, err := netip.ParseAddr(n); err == nil {
			return "", nameError(name, "an IP address, not a name")
		}
	}
	if len(n) > 4*maxNameLen {
		// Beyond anything IDNA could shrink to a DNS name.
		return "", nameError(name, "longer than 253 characters")
	}
	ascii, plain := plainName(n)
	if !plain {
		for i := 0; i < len(n); i++ {
			if c := n[i]; c <= ' ' || c == 0x7f {
				return "", nameError(name, "has a control character or a space")
			}
		}
		if !utf8.ValidString(n) {
			return "", nameError(name, "not valid UTF-8")
		}
		var err error
		ascii, err = idnaLookup.ToASCII(n)
		if err != nil {
			return "", nameError(name, "not a valid host name or IDN ("+strings.TrimPrefix(err.Error(), "idna: ")+")")
		}
	}
	if reason := checkHostName(ascii); reason != "" {
		return "", nameError(name, reason)
	}
	return ascii, nil
}

// looksLikeAddr reports whether n could be an IP address: it has a colon
// or ends in a digit. (Parsing every name would cost an error value per
// name that is not one.)
func looksLikeAddr(n string) bool {
	last := n[len(n)-1]
	return '0' <= last && last <= '9' || strings.IndexByte(n, ':') >= 0
}

// plainName reports whether n is LDH ASCII with no A-label, for which
// UTS #46 processing is only lower-casing (done here): the common case,
// without the IDNA tables.
func plainName(n string) (string, bool) {
	upper := false
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if hasALabel(n) {
		return "", false
	}
	if upper {
		n = strings.ToLower(n)
	}
	return n, true
}

// hasALabel reports whether a label of n starts with "xn--" in any case:
// those are decoded and checked by IDNA.
func hasALabel(n string) bool {
	for i := 0; i+4 <= len(n); i++ {
		if (i == 0 || n[i-1] == '.') && n[i+2] == '-' && n[i+3] == '-' && strings.EqualFold(n[i:i+2], "xn") {
			return true
		}
	}
	return false
}

// checkHostName returns why the lower-case ASCII name n is not a host
// name that may be asked, or "". These are the rules the IDNA lookup
// profile applies to each label, checked again here for the names that
// skip it, plus the shape of a name worth asking: two labels at least, a
// last label that is not a number, not localhost.
func checkHostName(n string) string {
	if len(n) > maxNameLen {
		return "longer than 253 characters"
	}
	labels, last := 0, ""
	for rest := n; ; {
		// IndexByte, not strings.SplitSeq: this runs for every name a
		// client shows, and a byte search is the cheaper loop.
		label := rest
		dot := strings.IndexByte(rest, '.')
		if dot >= 0 {
			label, rest = rest[:dot], rest[dot+1:]
		}
		labels++
		last = label
		if reason := checkHostLabel(label); reason != "" {
			return reason
		}
		if dot < 0 {
			break
		}
	}
	switch {
	case last == "localhost":
		return "a localhost name"
	case labels < 2:
		return "a single label, not a domain"
	case isNumber(last):
		return "its last label is a number: an address, not a name"
	}
	return ""
}

// checkHostLabel returns why a lower-case ASCII label is not one of a host
// name, or "".
func checkHostLabel(label string) string {
	switch {
	case label == "":
		return "has an empty label"
	case len(label) > 63:
		return "has a label longer than 63 characters"
	case label[0] == '-' || label[len(label)-1] == '-':
		return "has a label that starts or ends with a hyphen"
	case len(label) > 4 && label[2] == '-' && label[3] == '-' && label[:2] != "xn":
		return "has a label with \"--\" in the third and fourth places (reserved for IDNs)"
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "has the character " + strconv.QuoteRune(rune(c))
		}
	}
	return ""
}

// isNumber reports whether the non-empty label is all digits.
func isNumber(label string) bool {
	for i := 0; i < len(label); i++ {
		if c := label[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// registeredDomain returns the registered domain of the normalized name n,
// the public suffix and one label more (example.co.uk for
// mail.example.co.uk), or "" when n is that itself or is a public suffix.
// The public suffix list's private part counts too: a name under
// github.io or blogspot.com is its own owner's, not the hosting company's.
func registeredDomain(n string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(n)
	if err != nil || d == n {
		return ""
	}
	return d
}

// DomainQueryName builds the query name of a domain in a domain list's zone
// (RFC 5782 §2.3): the name normalized (lower case, IDNs as A-labels, no
// trailing dot), a dot and the zone. It returns a *NameError when the name
// cannot be asked (see Session.Ask) or is too long to fit in front of the
// zone.
func DomainQueryName(name, zone string) (string, error) {
	n, err := normalizeName(name)
	if err != nil {
		return "", err
	}
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	if !fitsZone(n, zone) {
		return "", nameError(name, tooLongForZone)
	}
	return n + "." + zone, nil
}

const tooLongForZone = "too long for a query name with the list's zone (253 characters at most)"

// fitsZone reports whether name.zone is a DNS name.
func fitsZone(name, zone string) bool { return len(name)+1+len(zone) <= maxNameLen }
