package rbl

import "fmt"

// DefaultThreshold is Config.Threshold when it is 0: one listing refuses.
const DefaultThreshold = 1

// CheckThreshold reports why t cannot be Config.Threshold (after 0 has
// become DefaultThreshold), or nil. Configuration front ends call it so
// that their rule is the engine's.
func CheckThreshold(t int) error {
	if t < 1 {
		return fmt.Errorf("%d must be at least 1 (a client is rejected when its score reaches it)", t)
	}
	return nil
}

// CheckAllowlistThreshold reports why t cannot be
// Config.AllowlistThreshold, or nil.
func CheckAllowlistThreshold(t int) error {
	if t > 0 {
		return fmt.Errorf("%d must be negative, or 0 to switch it off", t)
	}
	return nil
}
