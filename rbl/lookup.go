package rbl

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// answer is what one DNS lookup of one query zone got, before each list
// entry's filters classify it.
type answer struct {
	kind  answerKind
	codes codeSet
	// ttl is the positive TTL (smallest answer RR TTL) or the RFC 2308
	// negative TTL; the cache clamps it.
	ttl    time.Duration
	err    error
	cached bool
	// txt is the TXT record, when fetched.
	txt string
}

// answerKind says what kind of DNS answer (or failure) a lookup got.
type answerKind uint8

const (
	// answerNegative is NXDOMAIN, or NOERROR without A records.
	answerNegative answerKind = iota
	// answerRecords is NOERROR with A records.
	answerRecords
	answerError
	answerTimeout
	// answerOverBudget is a query not sent: the zone's daily query budget
	// is spent. Never cached.
	answerOverBudget
)

// newAnswer turns a resolver's reply into an answer.
func newAnswer(m *dns.Msg, err error) answer {
	if err != nil {
		if isTimeout(err) {
			return answer{kind: answerTimeout, err: err}
		}
		return answer{kind: answerError, err: err}
	}
	if m == nil {
		return answer{kind: answerError, err: errors.New("resolver returned no answer")}
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return answer{kind: answerError, err: errors.New("DNS answer " + rcodeName(m.Rcode))}
	}
	if m.Rcode == dns.RcodeSuccess {
		var codes []byte
		minTTL := uint32(0)
		for _, rr := range m.Answer {
			a, ok := rr.(*dns.A)
			if !ok {
				continue
			}
			v4 := a.A.To4()
			if v4 == nil {
				continue
			}
			if codes == nil || a.Hdr.Ttl < minTTL {
				minTTL = a.Hdr.Ttl
			}
			codes = append(codes, v4...)
		}
		if codes != nil {
			return answer{kind: answerRecords, codes: codeSet(codes), ttl: time.Duration(minTTL) * time.Second}
		}
	}
	return answer{kind: answerNegative, ttl: negativeTTL(m)}
}

// negativeTTL is how long an NXDOMAIN or NODATA answer may be cached, per
// RFC 2308 §5: the smaller of the SOA record's TTL and its MINIMUM field. 0
// (no SOA) leaves the choice to the cache's minimum TTL.
func negativeTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}

func isTimeout(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// maxTXTLen bounds the TXT text kept: it ends up in SMTP replies.
const maxTXTLen = 450

// txtFromMsg joins the TXT records of an answer into one printable line.
// Control characters are replaced, since the text may be put into an SMTP
// reply where a CR or LF would let a list operator inject protocol lines.
func txtFromMsg(m *dns.Msg) (string, time.Duration) {
	var b strings.Builder
	var ttl uint32
	for _, rr := range m.Answer {
		t, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		if ttl == 0 || t.Hdr.Ttl < ttl {
			ttl = t.Hdr.Ttl
		}
		for _, s := range t.Txt {
			b.WriteString(unescapeTXT(s))
		}
	}
	return sanitizeTXT(b.String()), time.Duration(ttl) * time.Second
}

// unescapeTXT undoes miekg/dns's presentation escapes (\DDD and \X) so
// that sanitizeTXT sees the bytes the list operator sent.
func unescapeTXT(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if v <= 255 {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, s[i+1])
		i++
	}
	return string(out)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func sanitizeTXT(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c < 0x20 || c >= 0x7f {
			out[i] = '?'
		}
	}
	if len(out) > maxTXTLen {
		out = out[:maxTXTLen]
	}
	return string(out)
}

// LookupError is a failed lookup of one list. Its message names the list by
// its display name and never contains the list's key.
type LookupError struct {
	// List is the list's display name.
	List string
	// Timeout is true when the lookup ran out of time.
	Timeout bool
	msg     string
}

// Error names the list and the failure.
func (e *LookupError) Error() string { return e.List + ": " + e.msg }

// Is lets errors.Is(err, ErrTimeout) find timeouts.
func (e *LookupError) Is(target error) bool { return target == ErrTimeout && e.Timeout }

// newLookupError wraps err for list l, scrubbing the key out of the text:
// a resolver's error may quote the query name, which holds the key.
func newLookupError(l *List, err error, timeout bool) *LookupError {
	return &LookupError{List: l.String(), Timeout: timeout, msg: scrubKey(err.Error(), l.Key)}
}

// scrubKey replaces the key in text that came from elsewhere (a resolver's
// error, a list's TXT record) and may quote the query name.
func scrubKey(s, key string) string {
	if key == "" {
		return s
	}
	// Query names are sent in lower case, and DNS servers may echo them
	// in any case: match the key ignoring case.
	i := indexFold(s, key)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for ; i >= 0; i = indexFold(s, key) {
		b.WriteString(s[:i])
		b.WriteString("[key]")
		s = s[i+len(key):]
	}
	b.WriteString(s)
	return b.String()
}

// result builds list l's Result from an answer.
func resultOf(l *List, a *answer) Result {
	r := Result{List: l, Cached: a.cached}
	switch a.kind {
	case answerError:
		r.Outcome, r.Err = Error, newLookupError(l, a.err, false)
	case answerTimeout:
		r.Outcome, r.Err = Timeout, newLookupError(l, a.err, true)
	case answerOverBudget:
		r.Outcome = OverBudget
	default:
		r.Outcome, r.Matched = l.classify(a.codes)
		if !l.Shadow {
			r.Weight = r.Matched
		}
		if r.Outcome != NotListed {
			r.Codes = a.codes.addrs()
		}
	}
	return r
}
