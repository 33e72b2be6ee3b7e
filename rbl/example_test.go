package rbl_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"github.com/rblmilter/rblmilter/rbl"
)

// zoneData is a Resolver answering from memory, standing in for a real
// DNS server so that the example runs anywhere.
type zoneData map[string]string

func (z zoneData) Query(_ context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	code, ok := z[name]
	if !ok || qtype != dns.TypeA {
		m.Rcode = dns.RcodeNameError
		return m, nil
	}
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A:   net.ParseIP(code),
	})
	return m, nil
}

func Example() {
	// postscreen_dnsbl_sites syntax: ZEN listings weigh 3, dnswl.org
	// entries -2.
	lists, err := rbl.ParseSites("zen.spamhaus.org=127.0.0.[2..11]*3, list.dnswl.org=127.0.[0..255].[1..3]*-2")
	if err != nil {
		log.Fatal(err)
	}
	// In production: rbl.NewResolver(rbl.ResolverConfig{Servers: ...}).
	resolver := zoneData{
		"99.2.0.192.zen.spamhaus.org": "127.0.0.4",
		"98.2.0.192.zen.spamhaus.org": "127.0.0.3",
		"98.2.0.192.list.dnswl.org":   "127.0.10.2",
		"97.2.0.192.zen.spamhaus.org": "127.255.255.254", // error code: never a listing
	}
	cache, err := rbl.NewCache(rbl.CacheConfig{Size: 10000}, nil)
	if err != nil {
		log.Fatal(err)
	}
	checker, err := rbl.NewChecker(rbl.Config{
		Lists:              lists,
		Threshold:          3,
		AllowlistThreshold: -1,
		Timeout:            2 * time.Second,
	}, rbl.Options{Resolver: resolver, Cache: cache})
	if err != nil {
		log.Fatal(err)
	}
	defer checker.Close()

	for _, client := range []string{"192.0.2.99", "192.0.2.98", "192.0.2.97", "192.0.2.1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v := checker.Check(ctx, netip.MustParseAddr(client))
		cancel()
		fmt.Printf("%s: %s (score %d)", client, v.Decision, v.Score)
		for _, r := range v.Results {
			fmt.Printf(" %s=%s%v", r.List, r.Outcome, r.Codes)
		}
		fmt.Println()
	}
	// Output:
	// 192.0.2.99: reject (score 3) zen.spamhaus.org=listed[127.0.0.4] list.dnswl.org=not_listed[]
	// 192.0.2.98: accept (score 1) zen.spamhaus.org=listed[127.0.0.3] list.dnswl.org=listed[127.0.10.2]
	// 192.0.2.97: accept (score 0) zen.spamhaus.org=refused[127.255.255.254] list.dnswl.org=not_listed[]
	// 192.0.2.1: accept (score 0) zen.spamhaus.org=not_listed[] list.dnswl.org=not_listed[]
}

// A resolver for production: the servers of /etc/resolv.conf.
func ExampleNewResolver() {
	servers, err := rbl.ServersFromResolvConf("/etc/resolv.conf")
	if err != nil {
		log.Fatal(err)
	}
	resolver, err := rbl.NewResolver(rbl.ResolverConfig{Servers: servers})
	if err != nil {
		log.Fatal(err)
	}
	_ = resolver // rbl.Options{Resolver: resolver}
}
