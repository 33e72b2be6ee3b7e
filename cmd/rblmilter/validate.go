package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/rbl"
)

// validateEngine lets package rbl check the lists the way NewChecker does
// at start. The resolver refuses every query: nothing leaves the machine.
func validateEngine(cfg *daemonConfig) error {
	c, err := rbl.NewChecker(cfg.Engine, rbl.Options{
		Resolver: refusingResolver{},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// refusingResolver answers every query with an error; it lets the engine
// validate a config without sending DNS queries.
type refusingResolver struct{}

func (refusingResolver) Query(context.Context, string, uint16) (*dns.Msg, error) {
	return nil, errors.New("config check: no DNS queries")
}
