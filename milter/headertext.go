package milter

import "strings"

// Header values rblmilter writes carry text from DNS (list TXT records)
// and from the configuration (list names), so they are made safe here:
// one printable line of bounded length, then folded (RFC 5322 2.2.3).

// foldWidth is RFC 5322's recommended line length (2.1.1): lines are
// folded before they pass it where a space allows.
const foldWidth = 78

// maxHeaderValue bounds a value rblmilter writes, before folding, so that
// even a value with no space to fold at stays inside RFC 5322's 998-octet
// line limit together with its name.
const maxHeaderValue = 900

// headerToken keeps the characters a token of a structured value may
// hold (letters, digits, '.', '-', '_'); every other character becomes
// '_', so that a list name like "Spamhaus ZEN" stays one token, and at
// most max bytes are kept.
func headerToken(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		default:
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

// quotedString renders s as an RFC 5322 quoted-string of at most max
// bytes between the quotes: control characters (CR and LF among them) and
// non-ASCII bytes are dropped, runs of spaces collapse to one, and '"'
// and '\' become quoted-pairs, so no byte of s can end the string or the
// header early.
func quotedString(s string, max int) string {
	var b strings.Builder
	b.WriteByte('"')
	n := 0
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			space = n > 0
			continue
		case c < 0x20 || c >= 0x7f:
			continue
		}
		escape := c == '"' || c == '\\'
		need := 1
		if escape {
			need++
		}
		if space {
			need++
		}
		if n+need > max {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
		n += need
	}
	b.WriteByte('"')
	return b.String()
}

// fold joins the value's parts with spaces, breaking the line before a
// part that would carry it past foldWidth. name is the header's name,
// whose "Name: " starts the first line. A part is never split, and none
// holds a line break: the parts come from headerToken, quotedString or
// rblmilter's own fixed text. A continuation line starts with a tab after
// a bare LF: the milter protocol carries header values with LF line ends
// (go-milter turns CRLF into LF for Postfix), and the MTA writes its own.
func fold(name string, parts []string) string { return foldGroups(name, parts) }

// foldGroups is fold for parts in groups, each group after the first
// starting a line of its own (one result per line, as Authentication-
// Results writers do).
func foldGroups(name string, groups ...[]string) string {
	var b strings.Builder
	col := len(name) + 2
	for gi, parts := range groups {
		for i, p := range parts {
			switch {
			case gi == 0 && i == 0:
			case i == 0 || col+1+len(p) > foldWidth:
				b.WriteString("\n\t")
				col = 1
			default:
				b.WriteByte(' ')
				col++
			}
			b.WriteString(p)
			col += len(p)
		}
	}
	return b.String()
}
