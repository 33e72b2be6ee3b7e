package rbl

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// TXT returns the TXT record of r, a listed result of one of the session's
// verdicts: the text the list gives for the listing, for a reply. It is
// r.TXT when the lookup fetched it (Config.FetchTXT), else it comes from
// the cache or from a query, sharing the cache and the in-flight queries
// with every other session. A reply shows one list's text, so fetching
// only that one when the reply is written saves a query per other listing
// list, and a decision never waits for a text. TXT waits at most until ctx
// ends (the query goes on and fills the cache); a failure, a timeout, a
// result that is not a listing and a closed Checker give "".
func (s *Session) TXT(ctx context.Context, r *Result) string {
	if r.Outcome != Listed || r.TXT != "" {
		return r.TXT
	}
	c := s.c
	li := c.entryIndex(r.List)
	if li < 0 {
		return ""
	}
	e := &c.entries[li]
	var fetch func() string
	if e.domain {
		if r.Name == "" {
			return ""
		}
		g := &c.dgroups[e.group]
		var key keyName
		if c.cache != nil {
			key = c.cache.nameKey(g.zoneID, r.Name)
			if txt, ok := c.cache.getNameTXT(key); ok {
				return txt
			}
		}
		fetch = func() string { return c.resolveNameTXT(g, key, r.Name) }
	} else {
		g, ip := &c.groups[e.group], s.v.IP
		if c.cache != nil {
			if txt, ok := c.cache.getTXT(g.zoneID, ip); ok {
				return txt
			}
		}
		fetch = func() string { return c.resolveTXT(g, ip) }
	}
	done := make(chan string, 1)
	if !c.goLookup(func() { done <- fetch() }) {
		return ""
	}
	select {
	case txt := <-done:
		return txt
	case <-ctx.Done():
		return ""
	}
}

// entryIndex returns the index of l in the Checker's configuration, or -1
// when l is not one of its entries.
func (c *Checker) entryIndex(l *List) int {
	for i := range c.cfg.Lists {
		if &c.cfg.Lists[i] == l {
			return i
		}
	}
	return -1
}

// needTXT reports whether the TXT record must be fetched for this answer:
// only when asked for, and only when some active entry counts it as listed
// (with a negative weight, for FetchAllowlistTXT).
func (c *Checker) needTXT(g *group, active uint64, a *answer) bool {
	if !c.cfg.FetchTXT && !c.cfg.FetchAllowlistTXT || a.kind != answerRecords {
		return false
	}
	for _, li := range g.lists {
		if active&c.entries[li].bit != 0 {
			if out, w := c.cfg.Lists[li].classify(a.codes); out == Listed && (c.cfg.FetchTXT || w < 0) {
				return true
			}
		}
	}
	return false
}

// resolveTXT fetches the TXT record of a listed client.
func (c *Checker) resolveTXT(g *group, ip netip.Addr) string {
	return c.queryTXT(g, QueryName(ip, g.zone),
		func() (string, bool) { return c.cache.getTXT(g.zoneID, ip) },
		func(txt string, ttl time.Duration) { c.cache.putTXT(g.zoneID, ip, txt, ttl) })
}

// queryTXT fetches the TXT record of name, a query name of group g that is
// listed; failures just leave the text empty. get and put reach its place
// in the cache, as for query.
func (c *Checker) queryTXT(g *group, name string, get func() (string, bool), put func(string, time.Duration)) string {
	v, _, _ := c.flights.Do(name+" TXT", func() (any, error) {
		if c.cache != nil {
			if txt, ok := get(); ok {
				return txt, nil
			}
		}
		if !c.budget.take(g.zone) {
			// The text only decorates the reply.
			return "", nil
		}
		ctx, cancel := context.WithTimeout(c.bg, g.timeout)
		defer cancel()
		if c.obs != nil {
			c.obs.QuerySent(g.name, dns.TypeTXT)
		}
		m, err := c.resolver.Query(ctx, name, dns.TypeTXT)
		if err != nil {
			// Remember the failure as an empty text (for min_ttl):
			// otherwise every check of this listed client would wait
			// for a TXT query that keeps failing, and the text only
			// decorates the reply.
			if c.cache != nil && c.bg.Err() == nil {
				put("", 0)
			}
			return "", nil
		}
		txt, ttl := txtFromMsg(m)
		txt = scrubKey(txt, g.key)
		if c.cache != nil {
			put(txt, ttl)
		}
		return txt, nil
	})
	return v.(string)
}

// resolveNameTXT fetches the TXT record of a listed name.
func (c *Checker) resolveNameTXT(g *group, key keyName, name string) string {
	return c.queryTXT(g, name+"."+g.zone,
		func() (string, bool) { return c.cache.getNameTXT(key) },
		func(txt string, ttl time.Duration) { c.cache.putNameTXT(key, txt, ttl) })
}
