package rbl

// filterMatcher is placeholder state; the implementer replaces it.
type filterMatcher struct{}
