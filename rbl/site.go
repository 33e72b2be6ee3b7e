package rbl

import (
	"errors"
	"fmt"
	"strings"
)

// ParseSite parses one Postfix postscreen_dnsbl_sites entry,
// zone[=filter][*weight], e.g. "zen.spamhaus.org=127.0.0.[2..11]*3" or
// "list.dnswl.org=127.0.[0..255].[1..3]*-2". The filter is a postscreen
// pattern (see ParseFilter); without one, every answer that is not an error
// code counts. The weight defaults to 1 and is added once however many A
// records match. The returned List is enabled for IPv4 and IPv6 and
// monitored.
func ParseSite(entry string) (List, error) {
	l, perr := parseSite(entry)
	if perr != nil {
		return List{}, &SyntaxError{What: "DNSBL site", Input: entry, Part: perr.part, Detail: perr.detail}
	}
	return l, nil
}

func parseSite(entry string) (List, *partError) {
	l := List{Weight: 1, IPv4: true, IPv6: true, Monitor: true}
	if strings.TrimSpace(entry) == "" {
		return List{}, badPart(entry, "empty entry")
	}
	rest := entry
	if i := strings.LastIndexByte(rest, '*'); i >= 0 {
		w, perr := parseWeight(rest[i+1:])
		if perr != nil {
			return List{}, perr
		}
		l.Weight, rest = w, rest[:i]
	}
	zone, filter, hasFilter := strings.Cut(rest, "=")
	zone, perr := parseZone(zone)
	if perr != nil {
		return List{}, perr
	}
	l.Zone = zone
	if hasFilter {
		if filter == "" {
			return List{}, badPart(filter, "empty filter after %q", zone+"=")
		}
		var m filterMatcher
		if perr := parsePattern(&m, filter); perr != nil {
			if filter[0] == '&' || strings.IndexByte(filter, '/') >= 0 {
				return List{}, badPart(filter, "filter %q: postscreen_dnsbl_sites takes only d.d.d.d patterns", filter)
			}
			return List{}, badPart(perr.part, "filter %q: %s", filter, perr.detail)
		}
		l.Filters = []Filter{{matcher: m, text: filter}}
	}
	return l, nil
}

// ParseSites parses a whole postscreen_dnsbl_sites value: entries separated
// by commas or white space.
func ParseSites(s string) ([]List, error) {
	var lists []List
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		l, err := ParseSite(entry)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	return lists, nil
}

// parseZone checks that zone is a DNS name and returns it without a
// trailing dot.
func parseZone(zone string) (string, *partError) {
	z := strings.TrimSuffix(zone, ".")
	if z == "" {
		return "", badPart(zone, "empty zone")
	}
	if len(z) > maxZoneLen {
		return "", badPart(zone, "zone %q is longer than %d characters", zone, maxZoneLen)
	}
	for label := range strings.SplitSeq(z, ".") {
		if perr := checkLabel(label); perr != nil {
			return "", badPart(zone, "zone %q: %s", zone, perr.detail)
		}
	}
	return z, nil
}

// CheckZone reports why zone (without its trailing dot) cannot be queried as
// a list zone, or nil. Config loaders use it to name the bad key themselves.
func CheckZone(zone string) error {
	if zone == "" {
		return errors.New("empty zone")
	}
	if len(zone) > maxZoneLen {
		return fmt.Errorf("longer than %d characters", maxZoneLen)
	}
	for label := range strings.SplitSeq(zone, ".") {
		if perr := checkLabel(label); perr != nil {
			return errors.New(perr.detail)
		}
	}
	return nil
}

// CheckLabel reports why s cannot be one DNS label (such as a DQS key), or
// nil. The error quotes s: do not show it for a secret.
func CheckLabel(s string) error {
	if perr := checkLabel(s); perr != nil {
		return errors.New(perr.detail)
	}
	return nil
}

// maxZoneLen leaves room in a 253-character name for the 64 characters of
// an IPv6 query prefix.
const maxZoneLen = 253 - 64

func checkLabel(label string) *partError {
	if label == "" {
		return badPart(label, "empty label")
	}
	if len(label) > 63 {
		return badPart(label, "label %q is longer than 63 characters", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return badPart(label, "label %q has the character %q", label, c)
		}
	}
	return nil
}
