package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-milter"
)

// nullMilter answers every CONNECT with a fixed verdict and does no work:
// with the same library as a real go-milter daemon, it is the cost of the
// milter protocol alone, the floor any milter can reach on this machine.
// With refuse, clients in those networks get a 554 reply instead, as a
// DNSBL milter refuses a listed client at connect: the floor of a
// refusing milter, which the MTA treats differently (it drops the client
// at the banner).
type nullMilter struct {
	milter.NoOpMilter
	verdict  milter.Response
	refuse   []netip.Prefix
	connects *atomic.Uint64
}

func (m nullMilter) Connect(_ string, _ string, _ uint16, addr net.IP, _ *milter.Modifier) (milter.Response, error) {
	m.connects.Add(1)
	if len(m.refuse) > 0 {
		if ip, ok := netip.AddrFromSlice(addr); ok {
			if ip = ip.Unmap(); inNets(ip, m.refuse) {
				return milter.NewResponseStr(byte(milter.ActReplyCode), "554 5.7.1 Service unavailable; client ["+ip.String()+"] refused by milterbench null"), nil
			}
		}
	}
	return m.verdict, nil
}

// parseVerdict maps the -verdict flag to a response.
func parseVerdict(s string) (milter.Response, error) {
	switch strings.ToLower(s) {
	case "accept":
		return milter.RespAccept, nil
	case "continue":
		return milter.RespContinue, nil
	case "reject":
		return milter.RespReject, nil
	case "tempfail":
		return milter.RespTempFail, nil
	}
	return nil, fmt.Errorf("-verdict %q: want accept, continue, reject or tempfail", s)
}

// serveMilter serves backend on ln until ctx ends. It closes the listener
// itself rather than calling milter.Server.Close, whose unsynchronised
// "closed" flag is a data race with Serve.
func serveMilter(ctx context.Context, ln net.Listener, newMilter func() milter.Milter) error {
	srv := &milter.Server{NewMilter: newMilter}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		ln.Close()
		<-done
		return nil
	case err := <-done:
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", specOf(ln), err)
	}
}
