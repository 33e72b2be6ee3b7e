package rbl

import (
	"errors"
	"strings"
)

// ErrNullSender is the null reverse-path <> of bounces and other
// notifications: it has no domain to ask.
var ErrNullSender = errors.New("the null sender <> has no domain")

// maxPathLen bounds a MAIL FROM path (RFC 5321 §4.5.3.1.3: 256 octets),
// with room for a source route.
const maxPathLen = 512

// SenderDomain returns the domain of a MAIL FROM address, as written after
// "MAIL FROM:" with or without its angle brackets: "<user@example.com>",
// a quoted local part ("\"a@b\"@example.com"), an obsolete source route
// ("<@relay.example:user@example.com>", RFC 5321 §4.1.2). The null sender
// is ErrNullSender; an address without a domain is a *NameError. The
// domain is returned as written, an address literal ("[192.0.2.1]")
// included: Session.Ask normalizes it and refuses what cannot be asked.
func SenderDomain(address string) (string, error) {
	s := strings.TrimSpace(address)
	if len(s) > maxPathLen {
		return "", nameError(address, "longer than a mail address can be")
	}
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return "", ErrNullSender
	}
	if s[0] == '@' {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return "", nameError(address, "a source route without the mailbox after it")
		}
		s = s[i+1:]
	}
	var rest string
	if s != "" && s[0] == '"' {
		end := quotedEnd(s)
		if end < 0 {
			return "", nameError(address, "a quoted local part without its closing quote")
		}
		rest = s[end+1:]
		if rest != "" && rest[0] != '@' {
			return "", nameError(address, "not a mail address")
		}
	} else {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			return "", nameError(address, "no domain")
		}
		if strings.ContainsAny(s[:i], "<>\"") {
			return "", nameError(address, "not a mail address")
		}
		rest = s[i:]
	}
	if rest == "" || rest[0] != '@' {
		return "", nameError(address, "no domain")
	}
	domain := rest[1:]
	if domain == "" {
		return "", nameError(address, "no domain")
	}
	if strings.ContainsAny(domain, "@<>\"") {
		return "", nameError(address, "not a mail address")
	}
	return domain, nil
}

// quotedEnd returns the index of the quote that closes the quoted string
// s starts with (RFC 5321 Quoted-string, with backslash escapes), or -1.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}
