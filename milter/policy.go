// Package milter connects rblmilter's lookup engine (package rbl) to MTAs
// through the milter protocol (github.com/emersion/go-milter): it decides at
// the SMTP connect stage (or delays the rejection to RCPT TO) and words the
// SMTP reply.
package milter

import (
	"fmt"
	"net/netip"
	"time"
)

// Action is what a listed client gets.
type Action uint8

const (
	// ActionReject answers with the 5xx reply template.
	ActionReject Action = iota
	// ActionTempfail answers the reject reply as a 4xx (like Postfix's
	// soft_bounce): the sender retries later.
	ActionTempfail
	// ActionTag accepts the message but adds a header at end of message.
	ActionTag
	// ActionLog only logs the decision (dry run) and accepts.
	ActionLog
)

// Stage is where a rejection is delivered.
type Stage uint8

const (
	// StageConnect rejects at connect: cheapest, but MTAs hide the reply
	// text (Postfix answers a generic 554, Sendmail drops it).
	StageConnect Stage = iota
	// StageRcpt delays the rejection to RCPT TO, so the reply text reaches
	// the sender and exempt recipients/authenticated clients can pass.
	// The lookup still starts at connect.
	StageRcpt
)

// Policy is the milter-side configuration; it is swapped atomically with
// the rbl.Checker on reload.
type Policy struct {
	Action Action
	Stage  Stage
	// Reply is the template for rejections, with {ip}, {list}, {code},
	// {txt}, {score}. It must start with a 5xx code and an enhanced
	// status code of class 5 ("554 5.7.1 ...").
	Reply string
	// TempfailReply is the reply when a list with on_error = tempfail
	// failed (verdict rbl.Tempfail); {list} names the failed lists. Empty
	// means DefaultTempfailReply. ActionTempfail instead answers Reply
	// turned into its 4xx form.
	TempfailReply string
	// ExemptRecipients are never refused at StageRcpt: a local part
	// ("postmaster") matches any domain, a full address only itself.
	// Compared case-insensitively.
	ExemptRecipients []string
	// SkipAuthenticated lets SMTP AUTH sessions through at StageRcpt.
	SkipAuthenticated bool
	// Skip networks are never looked up (accepted), Allow networks are
	// always accepted, Block networks always refused.
	Skip, Allow, Block []netip.Prefix
	// Timeout is the whole-connection budget for the lookup; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Header is the results header's name (see ResultsHeader): added to
	// the messages of clients at the tag level, of refused clients under
	// ActionTag, and with ResultsHeader to every message; empty means
	// DefaultHeader. Incoming copies are deleted whenever rblmilter adds
	// its own, so it must not be a header the message needs.
	Header string
	// ResultsHeader adds the results header to every accepted message,
	// clean clients' too (score=0), deleting forged copies, and, for
	// clients an allowlist entry listed, an RFC 8904
	// Authentication-Results header. It keeps the milter in the session
	// up to the end of each message.
	ResultsHeader bool
	// AuthservID is the authserv-id of the Authentication-Results header
	// (RFC 8601); empty means the MTA's {j} macro (its host name).
	AuthservID string
	// ListReplies are the list entries' own reply templates:
	// ListReplies[i] belongs to the engine's list entry i (the i-th
	// rbl.Config.Lists entry and Verdict.Results entry). It may be
	// shorter than the lists; entries without their own are zero. With
	// several entries counted, the first in configuration order that has
	// its own template wins.
	ListReplies []ListReply
	// PostscreenLog adds a postscreen-shaped log line
	// "DNSBL rank N for [IP]:PORT" for fail2ban.
	PostscreenLog bool
}

// Classify applies the policy's networks in the milter's order, skip, then
// allow, then block, and returns ResultSkip, ResultAllow or ResultBlock
// with the network that matched; ok is false when the client is to be
// looked up. Tools that explain decisions (rblmilter check) use it so that
// they cannot drift from the milter.
func (p *Policy) Classify(ip netip.Addr) (r Result, network netip.Prefix, ok bool) {
	for _, c := range []struct {
		result Result
		nets   []netip.Prefix
	}{{ResultSkip, p.Skip}, {ResultAllow, p.Allow}, {ResultBlock, p.Block}} {
		for _, n := range c.nets {
			if n.Contains(ip) {
				return c.result, n, true
			}
		}
	}
	return 0, netip.Prefix{}, false
}

// String returns the configuration word for a.
func (a Action) String() string {
	switch a {
	case ActionReject:
		return "reject"
	case ActionTempfail:
		return "tempfail"
	case ActionTag:
		return "tag"
	case ActionLog:
		return "log"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// String returns the configuration word for s.
func (s Stage) String() string {
	switch s {
	case StageConnect:
		return "connect"
	case StageRcpt:
		return "rcpt"
	}
	return fmt.Sprintf("stage(%d)", uint8(s))
}
