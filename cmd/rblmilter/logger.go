package main

import (
	"io"
	"log/slog"
)

// newLogger builds the logger that [log] configures, for the daemon and
// for `rblmilter check`; level, when non-nil, makes the level changeable
// on reload.
func newLogger(w io.Writer, c logConfig, level *slog.LevelVar) *slog.Logger {
	var lv slog.Leveler = c.Level
	if level != nil {
		level.Set(c.Level)
		lv = level
	}
	opts := &slog.HandlerOptions{Level: lv}
	if c.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
