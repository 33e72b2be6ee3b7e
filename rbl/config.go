package rbl

import (
	"log/slog"
	"time"
)

// Config is the engine's configuration. Defaults are applied by NewChecker.
type Config struct {
	// Lists are the list entries, scored in this order.
	Lists []List
	// Threshold: reject when the score is >= Threshold; 0 means
	// DefaultThreshold. CheckThreshold says which values are refused.
	Threshold int
	// AllowlistThreshold, when negative, accepts (Allowlisted) as soon as
	// the score is certain to be <= it. 0 disables it; see
	// CheckAllowlistThreshold.
	AllowlistThreshold int
	// TagThreshold, when positive and below Threshold, is the tag level:
	// a score that reaches it but not Threshold is decided Tag. 0
	// disables it; see CheckTagThreshold.
	TagThreshold int
	// Timeout is the per-list timeout of lists without their own; 0
	// means DefaultTimeout.
	Timeout time.Duration
	// FetchTXT fetches the TXT record of every listed answer with it, for
	// a report of every list's text (rblmilter check). Without it a
	// verdict's Results have no TXT, and Session.TXT fetches the one a
	// reply shows when it is written.
	FetchTXT bool
	// FetchAllowlistTXT asks for the TXT record of answers that an entry
	// counts with a negative weight (an allowlist), for reports like RFC
	// 8904's policy.txt, without delaying every listing by a TXT query.
	FetchAllowlistTXT bool
}

// Options are the Checker's injected dependencies.
type Options struct {
	// Resolver asks DNS; required.
	Resolver Resolver
	// Cache may be nil (no caching). One Cache may be shared by several
	// Checkers, e.g. the old and the new one across a config reload.
	Cache *Cache
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets debug lines about failed lookups; nil discards them.
	Logger *slog.Logger
	// Observer, if set, is told about queries, lookups and verdicts (for
	// metrics).
	Observer Observer
	// Health, if set, switches unhealthy lists off and hears about every
	// fresh answer.
	Health Health
	// Budget, if set, counts every DNS query sent and holds each list to
	// its DailyQueries (configure it with the same lists). One Budget may
	// be shared by several Checkers, e.g. across a config reload.
	Budget *Budget
}
