package milter

import (
	"fmt"
	"strings"

	"github.com/rblmilter/rblmilter/rbl"
)

// authResultsHeader is the header RFC 8601 defines for the results of
// message authentication; RFC 8904 adds the "dnswl" method, an allowlist
// lookup of the client's address.
const authResultsHeader = "Authentication-Results"

// maxPolicyTXT bounds the TXT record quoted in policy.txt.
const maxPolicyTXT = 200

// authResultsValue is the Authentication-Results value for the allowlist
// entries (negative weight, counted) that listed the client, one RFC 8904
// result each:
//
//	mx.example.org;
//		dnswl=pass dns.zone=list.dnswl.example policy.ip=127.0.10.1
//		policy.txt="example.com https://..."
//
// "" when no allowlist listed it. dns.zone is the zone without a DQS key
// (a secret); policy.ip is the first A record; policy.txt the list's TXT
// record, when it was fetched.
func authResultsValue(authservID string, v *rbl.Verdict) string {
	groups := [][]string{{authservID + ";"}}
	size := len(authservID) + 1
	for i := range v.Results {
		r := &v.Results[i]
		if r.Outcome != rbl.Listed || r.Weight >= 0 || r.List == nil {
			continue
		}
		if len(groups) > 1 {
			last := groups[len(groups)-1]
			last[len(last)-1] += ";"
		}
		res := []string{"dnswl=pass", "dns.zone=" + headerToken(r.List.Zone, 253)}
		if len(r.Codes) > 0 {
			res = append(res, "policy.ip="+r.Codes[0].String())
		}
		if r.TXT != "" {
			res = append(res, "policy.txt="+quotedString(r.TXT, maxPolicyTXT))
		}
		if size += 2 + partsLen(res); size > maxHeaderValue {
			// Only a configuration with many allowlists listing one
			// client gets here; the results that fit are kept.
			break
		}
		groups = append(groups, res)
	}
	if len(groups) == 1 {
		return ""
	}
	return foldGroups(authResultsHeader, groups...)
}

// maxAuthservID bounds the authserv-id: a host name is at most 253
// octets.
const maxAuthservID = 253

// checkAuthservID reports why id cannot be an authserv-id. RFC 8601 makes
// it a MIME token or quoted-string and asks for a host name; rblmilter
// takes a token, the form every MTA's host name has, so that the value
// it writes needs no quoting and forged copies compare exactly.
func checkAuthservID(id string) error {
	if id == "" {
		return fmt.Errorf("is empty")
	}
	if len(id) > maxAuthservID {
		return fmt.Errorf("is longer than %d characters", maxAuthservID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return fmt.Errorf("has the character %q (an authserv-id is a host name like \"mx.example.org\")", c)
		}
	}
	return nil
}

// authservIDOf returns the authserv-id an Authentication-Results value
// starts with (RFC 8601 2.2: after optional comments and folding white
// space, a token or quoted-string), "" when it has none.
func authservIDOf(value string) string {
	s := skipCFWS(value)
	if s == "" {
		return ""
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String()
			default:
				b.WriteByte(s[i])
			}
		}
		return "" // unterminated
	}
	end := strings.IndexAny(s, " \t\r\n;(")
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}

// skipCFWS drops leading white space, line breaks and comments (which
// nest, and may hold quoted-pairs).
func skipCFWS(s string) string {
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return s[i:]
		}
	}
	return ""
}
