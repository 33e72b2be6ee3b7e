package milter

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/rblmilter/rblmilter/rbl"
)

// The results header tells a content filter that runs later (rspamd,
// SpamAssassin, Amavis) what rblmilter found, in one line of key=value
// tokens it can match with a regular expression:
//
//	X-RBL: score=1 tag=1 reject=3 listed=pbl.example(127.0.0.10)
//
// score is the client's score, tag and reject the policy's levels (tag
// left out when the tag level is off), and each list entry that answered
// "listed" and counted adds a listed=NAME(CODE,CODE) token (a domain
// list's with the name it listed: listed=DBL(127.0.1.2;helo=bad.example)),
// allowlists with negative weights too: shadow entries, and entries whose
// sessions exclude the client, are left out, as they count for nothing.
// A client that was not looked up because it is in the skip, allow or
// block networks shows score=0 and skip=, allow= or block= with the
// network.

// levels are the score thresholds the results header reports.
type levels struct {
	// tag is the tag level; 0 when it is off.
	tag int
	// reject is the threshold at which the action applies.
	reject int
}

// Bounds on what one list entry adds to the results header, whatever the
// configuration or a resolver sends.
const (
	maxListName   = 64
	maxListCodes  = 8
	maxDomainName = 253
)

// resultsValue is the results header's value for a client that was
// looked up.
func resultsValue(name string, lv levels, v *rbl.Verdict) string {
	parts := levelParts(lv, v.Score)
	size := partsLen(parts)
	more := 0
	for i := range v.Results {
		r := &v.Results[i]
		if r.Outcome != rbl.Listed || r.List == nil || r.List.Shadow || r.Weight == 0 && r.Matched != 0 {
			continue
		}
		p := listedPart(r)
		if more > 0 || size+1+len(p) > maxHeaderValue-len(" more=999") {
			more++
			continue
		}
		parts = append(parts, p)
		size += 1 + len(p)
	}
	if more > 0 {
		parts = append(parts, "more="+strconv.Itoa(more))
	}
	return fold(name, parts)
}

// networkResultsValue is the results header's value for a client in the
// policy's networks: class is ResultSkip, ResultAllow or ResultBlock.
func networkResultsValue(name string, lv levels, class Result, n netip.Prefix) string {
	return fold(name, append(levelParts(lv, 0), class.String()+"="+n.String()))
}

func levelParts(lv levels, score int) []string {
	parts := make([]string, 0, 4)
	parts = append(parts, "score="+strconv.Itoa(score))
	if lv.tag != 0 {
		parts = append(parts, "tag="+strconv.Itoa(lv.tag))
	}
	return append(parts, "reject="+strconv.Itoa(lv.reject))
}

// listedPart renders one listing: "pbl.example(127.0.0.10,127.0.0.11)".
func listedPart(r *rbl.Result) string {
	var b strings.Builder
	b.WriteString("listed=")
	b.WriteString(headerToken(r.List.String(), maxListName))
	b.WriteByte('(')
	for i, c := range r.Codes {
		if i == maxListCodes {
			b.WriteString(",...")
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.String())
	}
	if r.Name != "" {
		// A domain list: which of the client's names it listed.
		b.WriteByte(';')
		b.WriteString(r.Check.String())
		b.WriteByte('=')
		b.WriteString(headerToken(r.Name, maxDomainName))
	}
	b.WriteByte(')')
	return b.String()
}

func partsLen(parts []string) int {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	return n
}
