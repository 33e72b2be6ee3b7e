package main

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/rblmilter/rblmilter/internal/socketspec"
)

// startMilter serves newMilter on spec (port 0 or a unix path) until the
// test ends and returns the bound spec.
func startMilter(t *testing.T, spec string, newMilter func() milter.Milter) socketspec.Spec {
	t.Helper()
	s, err := socketspec.ParseListen(spec)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenSocket(s)
	if err != nil {
		t.Fatal(err)
	}
	bound, err := socketspec.Parse(specOf(ln))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveMilter(ctx, ln, newMilter) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("milter server: %v", err)
		}
	})
	return bound
}

// startNullMilter serves a nullMilter answering verdict on spec until the
// test ends; connects counts the sessions it saw.
func startNullMilter(t *testing.T, spec string, verdict milter.Response) (target socketspec.Spec, connects *atomic.Uint64) {
	t.Helper()
	connects = new(atomic.Uint64)
	target = startMilter(t, spec, func() milter.Milter { return nullMilter{verdict: verdict, connects: connects} })
	return target, connects
}

// unixSpec is a socket path inside the test's temp dir.
func unixSpec(t *testing.T) string {
	return "unix:" + filepath.Join(t.TempDir(), "milter.sock")
}

// startDNS serves zones on 127.0.0.1:0 until the test ends.
func startDNS(t testing.TB, zones ...zoneConfig) (*dnsBench, string) {
	t.Helper()
	b, err := newDNSBench(zones, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b, serveDNS(t, b)
}

// serveDNS serves b on 127.0.0.1:0 until the test ends and returns its
// address.
func serveDNS(t testing.TB, b *dnsBench) string {
	t.Helper()
	addr, cancel, done := runDNS(t, b)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dns server: %v", err)
		}
	})
	return addr
}

// runDNS serves b on 127.0.0.1:0 and returns its address; cancel stops
// it, and done then gets what serve returned.
func runDNS(t testing.TB, b *dnsBench) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	pc, ln, err := listenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.serve(ctx, pc, ln) }()
	return pc.LocalAddr().String(), cancel, served
}

// testZone is a zone with the command's defaults.
func testZone(t testing.TB, name string) zoneConfig {
	t.Helper()
	listed, err := parseNets("listed", defaultListedNets)
	if err != nil {
		t.Fatal(err)
	}
	return zoneConfig{Name: dns.Fqdn(name), Answer: netip.MustParseAddr("127.0.0.2"), Listed: listed, TTL: 300, NegTTL: 300}
}

// testMix builds a mix over the default networks.
func testMix(t *testing.T, listed, repeat, ipv6 string, pool uint64) *mix {
	t.Helper()
	l, err := parseFraction("listed", listed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseFraction("repeat", repeat)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseFraction("ipv6", ipv6)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := parseNets("listed", defaultListedNets)
	cn, _ := parseNets("clean", defaultCleanNets)
	m, err := newMix(l, r, v, pool, ln, cn)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// baseConfig is a load run against target with test-friendly defaults.
func baseConfig(target socketspec.Spec, m *mix, n uint64) loadConfig {
	return loadConfig{
		drivePlan: drivePlan{Sessions: n, Concurrency: 4, Mix: m},
		Target:    target, Timeout: 10 * time.Second,
		Hostname: "mx.bench.test", Helo: "client.bench.test", From: "sender@bench.test", Rcpt: "user@bench.test",
		ActionMask: defaultActionMask, ProtocolMask: defaultProtocolMask,
	}
}
