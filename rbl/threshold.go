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

// CheckTagThreshold reports why tag cannot be Config.TagThreshold beside
// threshold, or nil: the tag level is the band below the reject level.
func CheckTagThreshold(tag, threshold int) error {
	switch {
	case tag < 0:
		return fmt.Errorf("%d is negative (0 switches the tag level off)", tag)
	case tag > 0 && tag >= threshold:
		return fmt.Errorf("%d must be below threshold %d (clients from tag_threshold up to threshold are accepted and tagged, from threshold on the action applies)", tag, threshold)
	}
	return nil
}
