package rbl

// Observer is told what the engine does, for metrics. Its methods are called
// concurrently from Check and from background lookups and must be fast and
// must not modify what they are given. Everything they get is safe to use as
// a bounded metric label (list display names, outcomes, codes) — never
// derive a label from the client address.
type Observer interface {
	// QuerySent is called for each DNS query handed to the resolver, after
	// cache and de-duplication. list is the display name of the first
	// list entry that uses the query zone.
	QuerySent(list string, qtype uint16)
	// LookupDone is called exactly once per list entry and Check, when the
	// entry's result is known: from Check for cached answers and lists not
	// asked (Disabled), otherwise when the lookup ends — even when that is
	// after an early decision returned the verdict (where the entry shows
	// as Pending) or after the caller's deadline (where it shows as
	// Timeout).
	LookupDone(r Result)
	// VerdictDone is called once per Check with the verdict returned.
	VerdictDone(v Verdict)
}

// Health lets a list-health monitor switch lists off and learn from live
// traffic. Its methods are called concurrently and must be fast. The *List
// points into the calling Checker's configuration, which is replaced on
// reload: identify lists by what they query (Key and Zone, as Monitor
// does), not by pointer.
type Health interface {
	// Enabled reports whether the list may be asked and counted now. A
	// disabled list gets Outcome Disabled. Called for every list on every
	// Check.
	Enabled(list *List) bool
	// Observe is told each fresh DNS answer (not cached ones, and once per
	// query however many checks share it), classified for list, so that
	// error codes, bogus answers and timeouts in live traffic are noticed
	// without waiting for the next probe.
	Observe(list *List, r Result)
}

// HealthObserver is told what a Monitor finds, for metrics, as Observer is
// told what a Checker does. Lists are named by display name (never a key);
// entries that share a query zone share its health, and each of their
// names is told. Its methods are called with the Monitor's lock held: they
// must be fast and must not call the Monitor.
type HealthObserver interface {
	// HealthConfigured is called by every Configure with the state of each
	// configured list: a list it does not name is no longer configured.
	HealthConfigured(states map[string]HealthState)
	// HealthChanged is called each time a list enters another state.
	HealthChanged(list string, state HealthState)
	// ProbeDone is called for each answered or failed probe with its raw
	// outcome (no filters: any sane code is Listed).
	ProbeDone(list string, o Outcome)
}
