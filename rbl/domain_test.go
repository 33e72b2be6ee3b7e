package rbl

import (
	"errors"
	"strings"
	"testing"
)

func TestDomainQueryName(t *testing.T) {
	for _, tt := range []struct{ name, zone, want string }{
		{"mail.example.com", "dbl.test", "mail.example.com.dbl.test"},
		{"Mail.Example.COM", "dbl.test", "mail.example.com.dbl.test"},
		{"mail.example.com.", "dbl.test.", "mail.example.com.dbl.test"},
		{"mail.example.com", "KEY.dbl.dq.spamhaus.net", "mail.example.com.key.dbl.dq.spamhaus.net"},
		// IDNs are asked as A-labels, whatever form the client wrote.
		{"bücher.example", "dbl.test", "xn--bcher-kva.example.dbl.test"},
		{"BÜCHER.Example.", "dbl.test", "xn--bcher-kva.example.dbl.test"},
		{"xn--bcher-kva.example", "dbl.test", "xn--bcher-kva.example.dbl.test"},
		{"XN--BCHER-KVA.example", "dbl.test", "xn--bcher-kva.example.dbl.test"},
		{"例え.テスト", "dbl.test", "xn--r8jz45g.xn--zckzah.dbl.test"},
		{"ＥＸＡＭＰＬＥ.com", "dbl.test", "example.com.dbl.test"},
		{"mail.example\u3002com", "dbl.test", "mail.example.com.dbl.test"},
		{"a1-b2.example", "dbl.test", "a1-b2.example.dbl.test"},
	} {
		got, err := DomainQueryName(tt.name, tt.zone)
		if err != nil || got != tt.want {
			t.Errorf("DomainQueryName(%q, %q) = %q, %v; want %q", tt.name, tt.zone, got, err, tt.want)
		}
	}
}

// Names that cannot be asked are refused with the reason, and never
// reach DNS.
func TestDomainQueryNameRefuses(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 253 characters
	for _, tt := range []struct{ name, msg string }{
		{"", `"": empty name`},
		{".", `".": empty name`},
		{"[192.0.2.1]", `"[192.0.2.1]": an address literal, not a name`},
		{"[IPv6:2001:db8::1]", `"[IPv6:2001:db8::1]": an address literal, not a name`},
		{"192.0.2.1", `"192.0.2.1": an IP address, not a name`},
		{"2001:db8::1", `"2001:db8::1": an IP address, not a name`},
		{"1.2.3", `"1.2.3": its last label is a number: an address, not a name`},
		{"mail", `"mail": a single label, not a domain`},
		{"localhost", `"localhost": a localhost name`},
		{"LocalHost.", `"LocalHost.": a localhost name`},
		{"mx.localhost", `"mx.localhost": a localhost name`},
		{"a..example", `"a..example": has an empty label`},
		{".example.com", `".example.com": has an empty label`},
		{"example.com..", `"example.com..": has an empty label`},
		{"-mx.example", `"-mx.example": has a label that starts or ends with a hyphen`},
		{"mx-.example", `"mx-.example": has a label that starts or ends with a hyphen`},
		{"ab--cd.example", `"ab--cd.example": has a label with "--" in the third and fourth places (reserved for IDNs)`},
		{"mx example.com", `"mx example.com": has a control character or a space`},
		{"mx\r\nexample.com", `"mx\r\nexample.com": has a control character or a space`},
		{"mx\x00.example", `"mx\x00.example": has a control character or a space`},
		{"mx\x7f.example", `"mx\x7f.example": has a control character or a space`},
		{"\xff.example", `"\xff.example": not valid UTF-8`},
		{"a_b.example", `"a_b.example": not a valid host name or IDN (disallowed rune U+005F)`},
		{"mx.exa!mple", `"mx.exa!mple": not a valid host name or IDN (disallowed rune U+0021)`},
		{"xn--zz.example", `"xn--zz.example": not a valid host name or IDN (invalid label "zz")`},
		{"\u200d.example", `"\u200d.example": not a valid host name or IDN (invalid label "\u200d")`},
		{label63 + "a.example", `"` + label63 + `a.example": has a label longer than 63 characters`},
		{long + "c", `"` + long[:80] + `...": longer than 253 characters`},
	} {
		_, err := DomainQueryName(tt.name, "dbl.test")
		var ne *NameError
		if !errors.As(err, &ne) || err.Error() != tt.msg {
			t.Errorf("DomainQueryName(%q) error\n got %v\nwant %s", tt.name, err, tt.msg)
		}
	}
	// A name may fit DNS but not in front of the zone.
	if _, err := DomainQueryName(long, "dbl.test"); err == nil || !strings.HasSuffix(err.Error(), ": "+tooLongForZone) {
		t.Errorf("253-character name with a zone: error %v", err)
	}
	if n, err := normalizeName(long); err != nil || n != long {
		t.Errorf("a 253-character name is a name: %q, %v", n, err)
	}
}

// Which names are asked: the name itself and its registered domain,
// once when they are the same.
func TestAskedNames(t *testing.T) {
	for _, tt := range []struct{ name, self, registered string }{
		{"mail.example.com", "mail.example.com", "example.com"},
		{"a.b.c.example.com", "a.b.c.example.com", "example.com"},
		{"example.com", "example.com", ""},
		{"Mail.Example.CO.UK.", "mail.example.co.uk", "example.co.uk"},
		{"example.co.uk", "example.co.uk", ""},
		// A public suffix is asked as it is.
		{"co.uk", "co.uk", ""},
		{"mx.shop.example.com.au", "mx.shop.example.com.au", "example.com.au"},
		// Wildcard rules of the public suffix list (*.ck).
		{"mail.shop.foo.ck", "mail.shop.foo.ck", "shop.foo.ck"},
		// Private suffixes: a name under github.io is its owner's.
		{"foo.github.io", "foo.github.io", ""},
		{"www.foo.github.io", "www.foo.github.io", "foo.github.io"},
		{"mail.bücher.example", "mail.xn--bcher-kva.example", "xn--bcher-kva.example"},
		// A TLD the list does not know counts as one label.
		{"client.test.invalid", "client.test.invalid", "test.invalid"},
	} {
		names, err := (&Session{}).askedNames(tt.name)
		if err != nil || names != [2]string{tt.self, tt.registered} {
			t.Errorf("askedNames(%q) = %q, %v; want [%q %q]", tt.name, names, err, tt.self, tt.registered)
		}
	}
}

func TestSenderDomain(t *testing.T) {
	for _, tt := range []struct{ addr, domain string }{
		{"user@example.com", "example.com"},
		{"<user@example.com>", "example.com"},
		{" <user@Example.COM> ", "Example.COM"},
		{"@relay.example:user@example.com", "example.com"},
		{"<@a.example,@b.example:user@example.com>", "example.com"},
		{`"a@b"@example.com`, "example.com"},
		{`"a\"@b"@example.com`, "example.com"},
		{`"a\\"@example.com`, "example.com"},
		{`"john smith"@example.org`, "example.org"},
		{"user+tag@mail.example.co.uk", "mail.example.co.uk"},
		{"user@[192.0.2.1]", "[192.0.2.1]"},
		{"user@bücher.example", "bücher.example"},
	} {
		got, err := SenderDomain(tt.addr)
		if err != nil || got != tt.domain {
			t.Errorf("SenderDomain(%q) = %q, %v; want %q", tt.addr, got, err, tt.domain)
		}
	}
	for _, addr := range []string{"", "<>", " <> "} {
		if _, err := SenderDomain(addr); !errors.Is(err, ErrNullSender) {
			t.Errorf("SenderDomain(%q) error %v, want the null sender", addr, err)
		}
	}
	for _, tt := range []struct{ addr, msg string }{
		{"postmaster", `"postmaster": no domain`},
		{"user@", `"user@": no domain`},
		{"@relay.example", `"@relay.example": a source route without the mailbox after it`},
		{`"a@b.example`, `"\"a@b.example": a quoted local part without its closing quote`},
		{`"a"b@example.com`, `"\"a\"b@example.com": not a mail address`},
		{`"a"`, `"\"a\"": no domain`},
		{"a@b@example.com", `"a@b@example.com": not a mail address`},
		{"<a@b.example", `"<a@b.example": not a mail address`},
		{strings.Repeat("a", 600) + "@example.com", `"` + strings.Repeat("a", 80) + `...": longer than a mail address can be`},
	} {
		_, err := SenderDomain(tt.addr)
		if err == nil || err.Error() != tt.msg {
			t.Errorf("SenderDomain(%q) error\n got %v\nwant %s", tt.addr, err, tt.msg)
		}
	}
}
