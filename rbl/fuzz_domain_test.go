package rbl

import (
	"errors"
	"strings"
	"testing"
)

// checkAskable fails unless n is a name domain lists may be asked about:
// lower-case LDH labels of 1 to 63 characters, two at least, 253 in all,
// and normalizing it again changes nothing.
func checkAskable(t *testing.T, input, n string) {
	t.Helper()
	if len(n) > maxNameLen || strings.Count(n, ".") < 1 {
		t.Fatalf("%q normalized to %q", input, n)
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			t.Fatalf("%q normalized to %q: label %q", input, n, label)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				t.Fatalf("%q normalized to %q: character %q", input, n, c)
			}
		}
	}
	if again, err := normalizeName(n); err != nil || again != n {
		t.Fatalf("%q normalized to %q, which normalizes to %q, %v", input, n, again, err)
	}
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{
		"mail.example.com", "Mail.Example.COM.", "bücher.example", "xn--bcher-kva.example", "例え.テスト",
		"[192.0.2.1]", "192.0.2.1", "localhost", "a..b", "-a.example", "ab--cd.example", "a_b.example",
		"xn--zz.example", "\xff.example", "mx\r\n.example", "ＥＸＡＭＰＬＥ.com", "a.b\u3002com", "co.uk",
		"www.foo.github.io", "\u200d.example", "1.2.3", strings.Repeat("a.", 130) + "com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := normalizeName(name)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) || len(ne.Name) > maxShownName+3 || ne.Reason == "" {
				t.Fatalf("normalizeName(%q): error %#v", name, err)
			}
			return
		}
		checkAskable(t, name, n)
		// The plain-ASCII shortcut agrees with the IDNA lookup profile.
		trimmed := strings.TrimSuffix(name, ".")
		if _, plain := plainName(trimmed); plain {
			if viaIDNA, err := idnaLookup.ToASCII(trimmed); err != nil || viaIDNA != n {
				t.Fatalf("%q: shortcut %q, IDNA %q, %v", name, n, viaIDNA, err)
			}
		}
		names, err := (&Session{}).askedNames(name)
		if err != nil || names[0] != n {
			t.Fatalf("askedNames(%q) = %q, %v", name, names, err)
		}
		if r := names[1]; r != "" {
			checkAskable(t, name, r)
			if r == n || !strings.HasSuffix(n, "."+r) {
				t.Fatalf("%q: registered domain %q of %q", name, r, n)
			}
		}
	})
}

func FuzzSenderDomain(f *testing.F) {
	for _, s := range []string{
		"user@example.com", "<user@example.com>", "", "<>", "@relay.example:user@example.com",
		`"a@b"@example.com`, `"a\"@b"@example.com`, "user@[192.0.2.1]", "postmaster", "a@b@c", "<a@b", `"unterminated@x`,
		"@a,@b:c@d.example", " <x@Example.ORG> ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		domain, err := SenderDomain(addr)
		if err != nil {
			var ne *NameError
			if !errors.Is(err, ErrNullSender) && !errors.As(err, &ne) {
				t.Fatalf("SenderDomain(%q): error %#v", addr, err)
			}
			return
		}
		if domain == "" || strings.ContainsAny(domain, "@<>\"") {
			t.Fatalf("SenderDomain(%q) = %q", addr, domain)
		}
		if !strings.HasSuffix(strings.TrimSuffix(strings.TrimSpace(addr), ">"), "@"+domain) {
			t.Fatalf("SenderDomain(%q) = %q, not the end of the address", addr, domain)
		}
		// What Ask would look up is a name, or nothing.
		if n, err := normalizeName(domain); err == nil {
			checkAskable(t, addr, n)
		}
	})
}
