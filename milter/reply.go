package milter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rblmilter/rblmilter/rbl"
)

// softBounce turns a validated 5xx reply template into its 4xx form
// ("554 5.7.1 ..." becomes "454 4.7.1 ..."), as Postfix's soft_bounce does.
func softBounce(tmpl string) string {
	if len(tmpl) < 5 {
		return tmpl
	}
	b := []byte(tmpl)
	b[0] = '4'
	if i := strings.IndexByte(tmpl, ' '); i >= 0 && i+1 < len(b) && b[i+1] == '5' {
		b[i+1] = '4'
	}
	return string(b)
}

// maxReplyText keeps a rendered reply well inside SMTP's 512-octet reply
// line (RFC 5321 4.5.3.1.5), whatever a list's TXT record holds.
const maxReplyText = 450

// validateReply checks that tmpl starts with a reply code of class want
// ('4' or '5') and an enhanced status code of the same class, because
// MTAs either refuse or silently rewrite a reply whose codes disagree.
func validateReply(field, tmpl string, want byte) error {
	code, rest, _ := strings.Cut(tmpl, " ")
	if len(code) != 3 || code[0] != want || !isDigits(code) {
		return fmt.Errorf("%s: %q must start with a %cxx reply code (like %q)", field, tmpl, want, string(want)+"54 "+string(want)+".7.1 ...")
	}
	enh, _, _ := strings.Cut(rest, " ")
	parts := strings.Split(enh, ".")
	if len(parts) != 3 || !isDigits(parts[0]) || !isDigits(parts[1]) || !isDigits(parts[2]) {
		return fmt.Errorf("%s: %q must have an enhanced status code after %s (like %c.7.1)", field, tmpl, code, want)
	}
	if parts[0][0] != want {
		return fmt.Errorf("%s: %q: enhanced status code %s must start with %c to match reply code %s", field, tmpl, enh, want, code)
	}
	if strings.ContainsAny(tmpl, "\r\n\x00") {
		return fmt.Errorf("%s: %q must be a single line", field, tmpl)
	}
	for _, p := range placeholders(tmpl) {
		switch p {
		case "ip", "name", "list", "code", "txt", "score":
		default:
			return fmt.Errorf("%s: %q: unknown placeholder {%s} (use {ip}, {name}, {list}, {code}, {txt}, {score})", field, tmpl, p)
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// placeholders lists the {name} fields used in tmpl.
func placeholders(tmpl string) []string {
	var out []string
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, tmpl[i+1:i+j])
		tmpl = tmpl[i+j+1:]
	}
}

// usesTXT reports whether the template needs the lists' TXT records, so
// that they are only fetched when somebody reads them.
func usesTXT(tmpl string) bool { return strings.Contains(tmpl, "{txt}") }

// replyFields are the values substituted into a reply template.
type replyFields struct {
	ip netip.Addr
	// name is what was listed: the name a domain list listed, else the
	// address.
	name  string
	list  string
	code  string
	txt   string
	score int
}

// ListReply holds one list entry's own reply templates; an empty one
// leaves the policy's template in force for that entry.
type ListReply struct {
	// Reply replaces Policy.Reply when the entry counted towards a
	// refusal. Same rules as Policy.Reply.
	Reply string
	// TempfailReply replaces Policy.TempfailReply when the entry's
	// failure made the verdict Tempfail. Same rules as
	// Policy.TempfailReply.
	TempfailReply string
}

// ValidateListReply reports the first problem of r, naming the field
// ("reply" or "tempfail_reply") as a list entry's key.
func ValidateListReply(r ListReply) error {
	if r.Reply != "" {
		if err := validateReply("reply", r.Reply, '5'); err != nil {
			return err
		}
	}
	if r.TempfailReply != "" {
		return validateReply("tempfail_reply", r.TempfailReply, '4')
	}
	return nil
}

// counted reports whether r is one of the entries a reply about v speaks
// of: for a tempfail the entries whose failure caused it, else the
// entries that added to the score.
func counted(v *rbl.Verdict, r *rbl.Result) bool {
	if v.Decision == rbl.Tempfail {
		return (r.Outcome == rbl.Error || r.Outcome == rbl.Timeout) && r.List.OnError == rbl.FailTempfail
	}
	return r.Weight > 0 && r.Outcome == rbl.Listed
}

// listTemplate picks the reply template for v: the own template of the
// first entry, in configuration order, that counted and has one, else
// global. It returns the entry's index, -1 for global. replies[i] belongs
// to v.Results[i].
func listTemplate(v *rbl.Verdict, replies []ListReply, global string) (string, int) {
	for i := range v.Results {
		if i >= len(replies) {
			break
		}
		tmpl := replies[i].Reply
		if v.Decision == rbl.Tempfail {
			tmpl = replies[i].TempfailReply
		}
		if tmpl != "" && counted(v, &v.Results[i]) {
			return tmpl, i
		}
	}
	return global, -1
}

// fieldsFromVerdict picks what a reply says about v: the lists that
// counted (or, for a tempfail, the lists that failed), the first code, the
// first TXT record and the first listed name among them, those of entry
// lead first when it is not -1 (the entry whose own template is used).
// txt gives a result's TXT record; it is asked about one result after
// another only until one has a text.
func fieldsFromVerdict(v *rbl.Verdict, lead int, txt func(*rbl.Result) string) replyFields {
	f := replyFields{ip: v.IP, score: v.Score}
	if lead >= 0 {
		r := &v.Results[lead]
		if len(r.Codes) > 0 {
			f.code = r.Codes[0].String()
		}
		f.txt = txt(r)
		if v.Decision != rbl.Tempfail {
			f.name = r.Name
		}
	}
	var names []string
	for i := range v.Results {
		r := &v.Results[i]
		if !counted(v, r) {
			continue
		}
		names = append(names, r.List.String())
		if f.code == "" && len(r.Codes) > 0 {
			f.code = r.Codes[0].String()
		}
		if f.txt == "" {
			f.txt = txt(r)
		}
		if f.name == "" && v.Decision != rbl.Tempfail {
			f.name = r.Name
		}
	}
	f.list = strings.Join(dedupe(names), ", ")
	if f.name == "" && v.IP.IsValid() {
		f.name = v.IP.String()
	}
	return f
}

// fetchedTXT is a result's TXT record as its lookup fetched it, if it did.
func fetchedTXT(r *rbl.Result) string { return r.TXT }

func dedupe(names []string) []string {
	out := names[:0]
	for _, n := range names {
		seen := false
		for _, o := range out {
			seen = seen || o == n
		}
		if !seen {
			out = append(out, n)
		}
	}
	return out
}

// renderReply fills tmpl in. Values come from DNS (TXT) and so are
// untrusted: control characters are dropped, and '%' is doubled because
// Postfix treats a single '%' in milter replies as a format character.
func renderReply(tmpl string, f replyFields) string {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(rest[:i])
		switch rest[i+1 : i+j] {
		case "ip":
			if f.ip.IsValid() {
				b.WriteString(f.ip.String())
			}
		case "name":
			b.WriteString(f.name)
		case "list":
			b.WriteString(f.list)
		case "code":
			b.WriteString(f.code)
		case "txt":
			b.WriteString(f.txt)
		case "score":
			b.WriteString(strconv.Itoa(f.score))
		default:
			b.WriteString(rest[i : i+j+1])
		}
		rest = rest[i+j+1:]
	}
	b.WriteString(rest)
	out := sanitizeReply(b.String())
	// An empty {txt} at the end of the default template would leave a
	// dangling "; ".
	out = strings.TrimRight(out, " ;,")
	if len(out) > maxReplyText {
		out = out[:maxReplyText]
	}
	return strings.ReplaceAll(out, "%", "%%")
}

func sanitizeReply(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
