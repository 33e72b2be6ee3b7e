package rbl_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

func TestSmoke(t *testing.T) {
	srv := rbltest.NewServer(t)
	ip := netip.MustParseAddr("192.0.2.1")
	srv.Set(rbl.QueryName(ip, "bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("listed, see x"))
	res, err := rbl.NewResolver(rbl.ResolverConfig{Servers: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := rbl.ParseSite("bl.test=127.0.0.[2..11]*3")
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := rbl.NewCache(rbl.CacheConfig{}, nil)
	c, err := rbl.NewChecker(rbl.Config{Lists: []rbl.List{l}, Threshold: 3, FetchTXT: true}, rbl.Options{Resolver: res, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		v := c.Check(context.Background(), ip)
		t.Logf("%+v", v)
		if v.Decision != rbl.Reject || v.Results[0].TXT != "listed, see x" {
			t.Fatalf("got %+v", v)
		}
	}
	v := c.Check(context.Background(), netip.MustParseAddr("192.0.2.2"))
	if v.Decision != rbl.Accept {
		t.Fatalf("got %+v", v)
	}
}
