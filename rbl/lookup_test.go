package rbl

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func TestLookup(t *testing.T) {
	srv := rbltest.NewServer(t)
	r := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr()}})
	l := List{Zone: "bl.test", Key: "k3y", Weight: 2}
	ip := mustAddr("127.0.0.2")
	srv.Set(QueryName(ip, "k3y.bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("test entry for k3y"))
	srv.Set(QueryName(mustAddr("127.0.0.3"), "k3y.bl.test"), rbltest.Rcode(dns.RcodeServerFailure))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := Lookup(ctx, r, &l, ip, true)
	if res.Outcome != Listed || res.Weight != 2 || res.TXT != "test entry for [key]" || res.Cached || res.Duration <= 0 {
		t.Errorf("listed: %+v", res)
	}
	if res := Lookup(ctx, r, &l, mustAddr("127.0.0.1"), true); res.Outcome != NotListed || res.TXT != "" {
		t.Errorf("not listed: %+v", res)
	}
	if res := Lookup(ctx, r, &l, mustAddr("127.0.0.3"), true); res.Outcome != Error || res.Err == nil {
		t.Errorf("servfail: %+v", res)
	}
}
