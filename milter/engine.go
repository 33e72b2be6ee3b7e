package milter

import (
	"context"
	"net/netip"

	"github.com/rblmilter/rblmilter/rbl"
)

// Checker is what the milter needs from the engine; Engine makes one of an
// *rbl.Checker.
type Checker interface {
	// Start begins a client's lookups (rbl.Checker.Start).
	Start(ip netip.Addr) Lookups
	// Checks reports what the lists are asked about, so that only the
	// SMTP stages they need are negotiated.
	Checks() rbl.CheckSet
	// Levels reports the score levels the verdicts are decided by: the
	// tag level (0 when off) and the reject threshold, for the results
	// header and for negotiating the stages the tag level needs.
	Levels() (tag, reject int)
}

// Lookups are one client's lookups, as an *rbl.Session does them: names
// asked as the client shows them, verdicts that wait for the answers or
// take what is in.
type Lookups interface {
	Ask(check rbl.Check, name string) error
	// Authenticated says whether the client has authenticated, once it
	// is known (rbl.Session.Authenticated).
	Authenticated(yes bool)
	Verdict(ctx context.Context, open rbl.CheckSet) rbl.Verdict
	// TXT returns a listed result's TXT record, fetching it if need be,
	// for a reply that shows it (rbl.Session.TXT).
	TXT(ctx context.Context, r *rbl.Result) string
	Peek(open rbl.CheckSet) rbl.Verdict
	Settled(open rbl.CheckSet) bool
}

// Engine adapts the lookup engine to Checker.
func Engine(c *rbl.Checker) Checker { return engine{c} }

type engine struct{ *rbl.Checker }

func (e engine) Start(ip netip.Addr) Lookups { return e.Checker.Start(ip) }

func (e engine) Levels() (tag, reject int) {
	cfg := e.Config()
	return cfg.TagThreshold, cfg.Threshold
}
