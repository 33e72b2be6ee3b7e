package rbl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Probe runs one probe round over every monitored zone and returns when
// every probe has answered or timed out.
func (m *Monitor) Probe(ctx context.Context) {
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	// Everything the probes need is copied under the lock: Configure may
	// change a zone's settings while the round runs.
	type round struct {
		z       *zoneHealth
		probes  []probe
		timeout time.Duration
		key     string
	}
	m.mu.Lock()
	resolver := m.resolver
	var rounds []round
	for _, z := range m.zones {
		switch {
		case !z.monitored:
		case m.budget.full(z.qzone):
			// Probes would only spend queries the lookups need; the
			// state stays as the last round left it.
			z.evidence = reasonOverBudget
		default:
			rounds = append(rounds, round{z: z, probes: m.plan(z), timeout: z.timeout, key: z.key})
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rounds {
		wg.Go(func() {
			results := runProbes(ctx, resolver, m.budget, r.z.qzone, r.probes, r.timeout, r.key)
			if ctx.Err() != nil {
				// Stopping: a cut-off probe says nothing about the list.
				return
			}
			m.judge(r.z, results)
		})
	}
	wg.Wait()
}

// probe is one question of a round.
type probe struct {
	// ip is the address asked, and addr that address as shown in logs.
	ip   netip.Addr
	addr string
	// name is the query name; it holds the key, so it is never shown.
	name string
	// listed is true for the test entry, which must be listed; every
	// other probe must not be.
	listed bool
	// required: a missing test entry degrades the list (the test entry of
	// the list's main family).
	required bool
	// canary: a random address of a reserved or public range, what.
	canary bool
	what   string
}

// The RFC 5782 §5 test points.
var (
	testPointV4    = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	notTestPointV4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	testPointV6    = netip.MustParseAddr("::ffff:7f00:2")
	notTestPointV6 = netip.MustParseAddr("::ffff:7f00:1")
)

// plan picks the probes of one round for z; m.mu must be held (m.rnd).
func (m *Monitor) plan(z *zoneHealth) []probe {
	var ps []probe
	add := func(a netip.Addr, listed, required bool) *probe {
		// RFC 5782 §5: IPv6 lists list ::FFFF:7F00:2 as 32 nibbles,
		// not as the IPv4 address QueryName would make of it.
		var name string
		if a.Is4() {
			name = QueryName(a, z.qzone)
		} else {
			name = string(append(appendNibbles(nil, a.As16()), z.qzone...))
		}
		ps = append(ps, probe{ip: a, addr: a.String(), name: name, listed: listed, required: required})
		return &ps[len(ps)-1]
	}
	if z.v4 {
		add(testPointV4, true, true)
		add(notTestPointV4, false, false)
	}
	if z.v6 {
		add(testPointV6, true, !z.v4)
		add(notTestPointV6, false, false)
	}
	for _, c := range drawCanaries(m.rnd, z.v4, z.v6) {
		p := add(c.addr, false, false)
		p.canary, p.what = true, c.what
	}
	if z.domain {
		// RFC 5782 §5: a domain list lists "test" and not "invalid".
		ps = append(ps,
			probe{addr: "test", name: "test." + z.qzone, listed: true, required: true},
			probe{addr: "invalid", name: "invalid." + z.qzone})
	}
	return ps
}

// probeResult is what one probe got.
type probeResult struct {
	probe
	outcome Outcome
	// answer describes the answer, e.g. "A 127.0.0.2" or "NXDOMAIN".
	answer string
}

// runProbes asks every probe in parallel, within timeout and qzone's
// budget; key is scrubbed from error messages.
func runProbes(ctx context.Context, resolver Resolver, budget *Budget, qzone string, ps []probe, timeout time.Duration, key string) []probeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := make([]probeResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		if !budget.take(qzone) {
			results[i] = probeResult{probe: p, outcome: OverBudget, answer: "not sent: daily query budget spent"}
			continue
		}
		wg.Go(func() {
			m, err := resolver.Query(ctx, p.name, dns.TypeA)
			a := newAnswer(m, err)
			r := probeResult{probe: p}
			switch a.kind {
			case answerError:
				r.outcome, r.answer = Error, scrubKey(a.err.Error(), key)
			case answerTimeout:
				r.outcome, r.answer = Timeout, fmt.Sprintf("no answer within %s", timeout)
			case answerNegative:
				r.outcome, r.answer = NotListed, "NXDOMAIN"
				if m != nil && m.Rcode == dns.RcodeSuccess {
					r.answer = "NOERROR without A records"
				}
			default:
				// Raw classification: no filters, so any sane code is
				// a listing.
				var raw List
				r.outcome, _ = raw.classify(a.codes)
				r.answer = describeCodes(a.codes.addrs())
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results
}

func describeCodes(codes []netip.Addr) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = c.String()
	}
	return "A " + strings.Join(s, ", ")
}

const (
	reasonRefused    = "answers an operator error code (refused: public or unregistered resolver, or over quota)"
	reasonBogus      = "answers records outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)"
	reasonWorld      = "lists the world"
	reasonOverBudget = "not probed: the daily query budget is spent"
)

// judge turns a round's answers into z's new state.
func (m *Monitor) judge(z *zoneHealth, results []probeResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if z.removed || !z.monitored {
		return
	}
	z.checked = m.now()
	z.rounds++
	canaries := judgeCanaries(results)
	z.evidence = roundEvidence(results, canaries)
	if m.obs != nil {
		for _, r := range results {
			for _, name := range z.names {
				m.obs.ProbeDone(name, r.outcome)
			}
		}
	}
	seen := func(r probeResult) string { return r.addr + " → " + r.answer }
	// Worst first: each of these alone makes the zone unhealthy.
	for _, r := range results {
		if r.outcome == Bogus {
			m.transition(z, HealthUnhealthy, reasonBogus, seen(r))
			return
		}
	}
	for _, r := range results {
		if r.outcome == Refused {
			m.transition(z, HealthUnhealthy, reasonRefused, seen(r))
			return
		}
	}
	// Proof of listing the world: 127.0.0.1 (or ::ffff:7f00:1) listed, or
	// every canary of a family. Some canaries listed are not (below).
	for _, r := range results {
		if !r.listed && !r.canary && r.outcome == Listed {
			m.transition(z, HealthUnhealthy, reasonWorld+": "+r.addr+" is listed, which RFC 5782 §5 forbids every list", seen(r))
			return
		}
	}
	if canaries.world != "" {
		m.transition(z, HealthUnhealthy, reasonWorld+": "+canaries.world, seen(*canaries.first))
		return
	}
	for _, r := range results {
		if r.outcome == OverBudget {
			// The budget ran out during the round: it proves nothing.
			return
		}
	}
	tooMany, answered := false, false
	var lastFailure probeResult
	for _, r := range results {
		if r.outcome.Failed() {
			z.failures++
			lastFailure = r
			tooMany = tooMany || z.failures >= m.threshold
		} else {
			z.failures = 0
			answered = true
		}
	}
	if tooMany {
		m.transition(z, HealthUnhealthy, fmt.Sprintf("not answering: %d or more probes in a row failed", m.threshold), seen(lastFailure))
		return
	}
	var degraded []string
	answer := ""
	degrade := func(reason, ans string) {
		degraded = append(degraded, reason)
		if answer == "" {
			answer = ans
		}
	}
	for _, r := range results {
		if !r.required {
			continue
		}
		switch {
		case r.outcome.Failed():
			// Inconclusive: keep the state until a round says more.
			return
		case r.outcome != Listed:
			degrade("test entry "+r.addr+" is not listed (RFC 5782 §5): the list may not work; still counted (a list of your own should list it)", seen(r))
		}
	}
	for _, r := range results {
		if r.listed && !r.required && r.outcome == NotListed {
			degrade("IPv6 test entry "+r.addr+" is not listed: set ipv6 = false if the list has no IPv6 data", seen(r))
		}
	}
	if canaries.some != "" {
		degrade(canaries.some, seen(*canaries.first))
	}
	if len(degraded) > 0 {
		m.transition(z, HealthDegraded, strings.Join(degraded, "; "), answer)
		return
	}
	if answered {
		m.transition(z, HealthHealthy, "", "")
	}
}

// roundEvidence sums a round up in one line: each test point's answer,
// then how many canaries were listed, and which.
func roundEvidence(results []probeResult, canaries canaryFinding) string {
	var parts []string
	for _, r := range results {
		if !r.canary {
			parts = append(parts, r.addr+" "+evidenceWord(r))
		}
	}
	line := strings.Join(parts, ", ")
	if canaries.asked > 0 {
		line += fmt.Sprintf("; canaries: %d of %d listed", canaries.listed, canaries.asked)
		if len(canaries.listedAddrs) > 0 {
			line += " (" + strings.Join(canaries.listedAddrs, ", ") + ")"
		}
		if canaries.unanswered > 0 {
			line += fmt.Sprintf(", %d unanswered", canaries.unanswered)
		}
		if canaries.notSent > 0 {
			line += fmt.Sprintf(", %d not sent (budget)", canaries.notSent)
		}
	}
	return line
}

// evidenceWord says in a word or two what a probe got.
func evidenceWord(r probeResult) string {
	switch r.outcome {
	case Listed:
		return "listed"
	case NotListed:
		return "not listed"
	case Timeout:
		return "unanswered"
	case OverBudget:
		return "not sent (budget)"
	default:
		return r.answer
	}
}
