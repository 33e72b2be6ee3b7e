package rbl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// DefaultTimeout is the per-list timeout when Config.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Checker scores clients against the configured lists: their addresses
// (IP lists) and the names they show (domain lists). It is safe for
// concurrent use.
type Checker struct {
	cfg      Config
	resolver Resolver
	cache    *Cache
	now      func() time.Time
	// since reads the time elapsed from now's clock (see sinceFor).
	since  func(time.Time) time.Duration
	log    *slog.Logger
	obs    Observer
	health Health
	budget *Budget

	// groups are the IP lists' query zones, dgroups the domain lists'.
	groups, dgroups []group
	// entries run parallel to cfg.Lists.
	entries []entry
	// checks are what the lists are asked about.
	checks CheckSet
	// authLists: some entry counts only for authenticated clients.
	authLists bool

	// bg is the parent of every DNS query: queries outlive the Check that
	// started them (to fill the cache after an early decision) but not the
	// Checker.
	bg       context.Context
	cancelBg context.CancelFunc
	flights  singleflight.Group

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
}

// group is every list entry of one type that shares one query zone, and
// so one DNS query per client address or name.
type group struct {
	// zone is the query zone in lower case, key included: a secret.
	zone   string
	zoneID uint32
	// key is the entries' key, scrubbed from TXT records.
	key string
	// name is the display name of the first entry, for the Observer.
	name    string
	lists   []int
	timeout time.Duration
	// checks are what the group's (domain) entries are asked about.
	checks CheckSet
	// authOnly: the group's entries are IP lists that count only for
	// authenticated clients, asked once the client has authenticated.
	// They share the cache with the zone's other entries.
	authOnly bool
}

type entry struct {
	// group indexes Checker.groups, or Checker.dgroups for a domain list.
	group  int
	domain bool
	// bit is the entry's bit in its group's activity mask.
	bit    uint64
	lo, hi int
}

// maxGroupLists bounds how many entries may share one query zone, so that a
// group's active entries fit in a uint64.
const maxGroupLists = 64

// NewChecker validates cfg, applies defaults and returns a Checker.
//
// Defaults: Threshold DefaultThreshold, Timeout DefaultTimeout, a list's
// Name is its Zone and its Timeout is Config.Timeout, an IP list with both
// IPv4 and IPv6 off is on for both (the zero List is usable), and a domain
// list without Checks has DefaultDomainChecks. A list's Weight is taken as
// given: 0 counts nothing.
func NewChecker(cfg Config, opts Options) (*Checker, error) {
	if opts.Resolver == nil {
		return nil, errors.New("rbl: no resolver")
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if err := CheckThreshold(cfg.Threshold); err != nil {
		return nil, fmt.Errorf("rbl: threshold %w", err)
	}
	if err := CheckAllowlistThreshold(cfg.AllowlistThreshold); err != nil {
		return nil, fmt.Errorf("rbl: allowlist threshold %w", err)
	}
	if err := CheckTagThreshold(cfg.TagThreshold, cfg.Threshold); err != nil {
		return nil, fmt.Errorf("rbl: tag threshold %w", err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("rbl: negative timeout %s", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	c := &Checker{
		resolver: opts.Resolver,
		cache:    opts.Cache,
		now:      opts.Now,
		log:      opts.Logger,
		obs:      opts.Observer,
		health:   opts.Health,
		budget:   opts.Budget,
	}
	c.since = sinceFor(c.now)
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	lists := make([]List, len(cfg.Lists))
	copy(lists, cfg.Lists)
	cfg.Lists = lists
	type zoneOf struct {
		domain, authOnly bool
		zone             string
	}
	byZone := make(map[zoneOf]int)
	for i := range cfg.Lists {
		l := &cfg.Lists[i]
		if err := normalizeList(l, cfg.Timeout); err != nil {
			return nil, fmt.Errorf("rbl: list %d (%s): %w", i+1, l, err)
		}
		l.Filters = append([]Filter(nil), l.Filters...)
		domain := l.Type == DomainList
		groups := &c.groups
		if domain {
			groups = &c.dgroups
		}
		qzone := l.queryZoneKey()
		authOnly := !domain && l.Sessions == SessionsAuthenticated
		gi, ok := byZone[zoneOf{domain, authOnly, qzone}]
		if !ok {
			gi = len(*groups)
			byZone[zoneOf{domain, authOnly, qzone}] = gi
			g := group{zone: qzone, name: l.String(), key: l.Key, authOnly: authOnly}
			if c.cache != nil {
				g.zoneID = c.cache.zoneID(qzone)
			}
			*groups = append(*groups, g)
		}
		g := &(*groups)[gi]
		if len(g.lists) == maxGroupLists {
			return nil, fmt.Errorf("rbl: list %d (%s): more than %d entries share one zone", i+1, l, maxGroupLists)
		}
		lo, hi := l.weightRange()
		c.entries = append(c.entries, entry{group: gi, domain: domain, bit: 1 << len(g.lists), lo: lo, hi: hi})
		g.lists = append(g.lists, i)
		g.timeout = max(g.timeout, l.Timeout)
		g.checks |= l.Checks
		c.checks |= l.Checks
		c.authLists = c.authLists || l.Sessions == SessionsAuthenticated
	}
	c.cfg = cfg
	c.bg, c.cancelBg = context.WithCancel(context.Background())
	return c, nil
}

// normalizeList checks one list and fills in its defaults. Its errors name
// the list by display name only, never the key.
func normalizeList(l *List, timeout time.Duration) error {
	zone, perr := parseZone(l.Zone)
	if perr != nil {
		return errors.New(perr.detail)
	}
	l.Zone = zone
	if l.Key != "" {
		if strings.ContainsAny(l.Key, ".") || checkLabel(l.Key) != nil {
			return errors.New("key is not a single DNS label (letters, digits, '-', '_'; at most 63)")
		}
		if len(l.Key)+1+len(zone) > maxZoneLen {
			return errors.New("key and zone together are too long for a query name")
		}
	}
	if l.Name == "" {
		l.Name = l.Zone
	}
	if l.Key != "" && containsFold(l.Name, l.Key) {
		return errors.New("display name contains the key")
	}
	if l.Weight > maxWeight || l.Weight < -maxWeight {
		return fmt.Errorf("weight %d is out of range -%d..%d", l.Weight, maxWeight, maxWeight)
	}
	for i := range l.Filters {
		f := &l.Filters[i]
		if f.matcher.kind == filterInvalid {
			return fmt.Errorf("filter %d was not made by ParseFilter", i+1)
		}
		if f.Weight > maxWeight || f.Weight < -maxWeight {
			return fmt.Errorf("filter %s: weight out of range -%d..%d", f, maxWeight, maxWeight)
		}
	}
	if l.Sessions > SessionsAll {
		return fmt.Errorf("unknown sessions %d", l.Sessions)
	}
	if l.Timeout < 0 {
		return fmt.Errorf("negative timeout %s", l.Timeout)
	}
	l.Timeout = l.timeoutOr(timeout)
	if l.OnError != FailIgnore && l.OnError != FailTempfail {
		return fmt.Errorf("unknown failure policy %d", l.OnError)
	}
	if l.DailyQueries < 0 {
		return fmt.Errorf("negative daily query limit %d", l.DailyQueries)
	}
	switch l.Type {
	case IPList:
		if l.Checks&^Checks(CheckIP) != 0 {
			return fmt.Errorf("checks %s: an IP list is asked about the client's address only", l.Checks&^Checks(CheckIP))
		}
		l.Checks = Checks(CheckIP)
		l.IPv4, l.IPv6 = l.families()
	case DomainList:
		if l.Checks == 0 {
			l.Checks = DefaultDomainChecks
		}
		if l.Checks&^nameChecks != 0 {
			return errors.New("checks: a domain list is asked about names (client, reverse_client, helo, sender), not the address")
		}
		l.IPv4, l.IPv6 = false, false
	default:
		return fmt.Errorf("unknown list type %d", l.Type)
	}
	return l.CheckForgeable()
}

// Config returns the effective configuration (defaults applied).
func (c *Checker) Config() Config {
	cfg := c.cfg
	cfg.Lists = make([]List, len(c.cfg.Lists))
	for i, l := range c.cfg.Lists {
		l.Filters = append([]Filter(nil), l.Filters...)
		cfg.Lists[i] = l
	}
	return cfg
}

// Close stops background lookups and waits for them. Checks after Close
// get only cached answers; every other list ends in Error.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancelBg()
	c.wg.Wait()
}

var errClosed = errors.New("checker is closed")

// groupResult is what a background group lookup hands back to a session.
type groupResult struct {
	group   int
	active  uint64
	results []Result
}

// Check looks ip up on every IP list in parallel and returns the verdict:
// a Session that asks no names (domain lists end in NoName). It returns as
// soon as no pending answer can change the decision (Early); the lookups
// left behind go on in the background to fill the cache. When ctx ends
// first, the lists still pending end in Timeout and their failure policy
// decides. Results are in configuration order.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) Verdict {
	return c.Start(ip).Verdict(ctx, 0)
}

// Checks reports what the lists are asked about: CheckIP when there are IP
// lists, and the checks of the domain lists. An MTA glue asks only for the
// SMTP stages these need.
func (c *Checker) Checks() CheckSet { return c.checks }

// goLookup runs fn in the background, unless the Checker is closed.
func (c *Checker) goLookup(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// lookupGroup resolves one IP group for one client, under the group's own
// timeout and the Checker's lifetime, never the caller's context: its
// answer fills the cache even when the session has moved on.
func (c *Checker) lookupGroup(gi int, ip netip.Addr, active uint64, pre *answer) groupResult {
	start := c.now()
	g := &c.groups[gi]
	var a answer
	if pre != nil {
		a = *pre
	} else {
		a = c.resolve(g, ip)
	}
	if c.needTXT(g, active, &a) {
		a.txt = c.resolveTXT(g, ip)
	}
	dur := c.now().Sub(start)
	results := make([]Result, len(g.lists))
	for k, li := range g.lists {
		if active&c.entries[li].bit == 0 {
			continue
		}
		r := resultOf(&c.cfg.Lists[li], &a)
		if r.Outcome == Listed {
			r.TXT = a.txt
		}
		r.Duration = dur
		results[k] = r
		if c.obs != nil {
			c.obs.LookupDone(r)
		}
	}
	return groupResult{group: gi, active: active, results: results}
}

// resolve asks DNS for a group's A records about ip, sharing the query with
// every concurrent session of the same client.
func (c *Checker) resolve(g *group, ip netip.Addr) answer {
	return c.query(g, QueryName(ip, g.zone),
		func() (cacheEntry, bool) { return c.cache.peek(g.zoneID, ip) },
		func(a *answer) { c.cache.put(g.zoneID, ip, a) })
}

// query asks DNS for the A records of name, a query name of group g, once
// for every concurrent lookup of it. peek and put reach the name's place
// in the cache; they are called only when there is a cache. Health hears
// every fresh answer.
func (c *Checker) query(g *group, name string, peek func() (cacheEntry, bool), put func(*answer)) answer {
	v, _, _ := c.flights.Do(name, func() (any, error) {
		// A flight that ended between our cache miss and now has
		// filled the cache: use that rather than ask again.
		if c.cache != nil {
			if e, ok := peek(); ok {
				a := e.answer()
				return &a, nil
			}
		}
		if !c.budget.take(g.zone) {
			// Not asked, so neither cached nor a failure to report.
			return &answer{kind: answerOverBudget}, nil
		}
		ctx, cancel := context.WithTimeout(c.bg, g.timeout)
		defer cancel()
		if c.obs != nil {
			c.obs.QuerySent(g.name, dns.TypeA)
		}
		start := c.now()
		m, err := c.resolver.Query(ctx, name, dns.TypeA)
		a := newAnswer(m, err)
		if c.bg.Err() != nil {
			// Closing, not a DNS failure: neither cache nor report it.
			return &a, nil
		}
		if c.cache != nil {
			put(&a)
		}
		if a.err != nil {
			c.log.Debug("DNS lookup failed", "list", g.name, "err", newLookupError(&c.cfg.Lists[g.lists[0]], a.err, false).msg)
		}
		if c.health != nil {
			dur := c.now().Sub(start)
			for _, li := range g.lists {
				l := &c.cfg.Lists[li]
				r := resultOf(l, &a)
				r.Duration = dur
				c.health.Observe(l, r)
			}
		}
		return &a, nil
	})
	return *v.(*answer)
}
