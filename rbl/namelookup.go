package rbl

import (
	"fmt"
	"time"
)

// lookupState is where one name lookup of a session stands.
type lookupState uint8

const (
	lookupPending lookupState = iota
	lookupDone
	// lookupExpired: the session stopped waiting (a deadline); it counts
	// as a timeout for the session, though the query goes on to fill the
	// cache.
	lookupExpired
)

// nameLookup is the answer of one domain group for one name, shared by the
// group's entries and by every check that asked the name.
type nameLookup struct {
	id    uint32
	group int
	// name is the normalized name, without the zone.
	name string
	// checks asked for the name; the Observer hears of each.
	checks CheckSet
	state  lookupState
	a      answer
	dur    time.Duration
}

// startDomain notes which domain entries health lets take part. Domain
// entries are NoName until a name of theirs is asked.
func (s *Session) startDomain() {
	c := s.c
	if n := len(c.dgroups); n <= len(s.dActiveBuf) {
		s.dActive = s.dActiveBuf[:n]
	} else {
		s.dActive = make([]uint64, n)
	}
	for gi := range c.dgroups {
		for _, li := range c.dgroups[gi].lists {
			l := &c.cfg.Lists[li]
			r := &s.v.Results[li]
			r.List = l
			if c.health != nil && !c.health.Enabled(l) {
				r.Outcome = Disabled
				continue
			}
			r.Outcome = NoName
			s.dActive[gi] |= c.entries[li].bit
		}
	}
}

// Ask gives the session the client's name for check (CheckClient,
// CheckReverseClient, CheckHelo), or for CheckSender its MAIL FROM address
// (with or without angle brackets; see SenderDomain), and starts the
// lookups of the domain lists asked about it: the name itself and its
// registered domain (example.co.uk for mail.example.co.uk), each once per
// query zone however many checks and entries ask it. A name given before
// for check is replaced (a new EHLO, the next transaction's sender), and
// an empty name clears it.
//
// A name that cannot be asked (an address literal, a single label,
// localhost, over-long, empty labels, control characters, invalid IDNA;
// the null sender) is not looked up: Ask returns why, and logs it at debug
// level when some list checks it.
func (s *Session) Ask(check Check, name string) error {
	if !nameChecks.Has(check) {
		return fmt.Errorf("rbl: %s is not a name check", check)
	}
	var names [2]string
	var err error
	if check == CheckSender {
		var domain string
		if domain, err = SenderDomain(name); err == nil {
			names, err = s.askedNames(domain)
		}
	} else {
		names, err = s.askedNames(name)
	}
	c := s.c
	if err != nil && (name != "" || check == CheckSender) && c.checks.Has(check) {
		c.log.Debug("name not asked of domain lists", "check", check.String(), "reason", err.Error())
	}
	old := s.names[check]
	if names == old {
		return err
	}
	s.names[check] = names
	s.reported = false
	s.mark = c.now()
	keys := nameKeys{cache: c.cache, names: names}
	for gi := range c.dgroups {
		g := &c.dgroups[gi]
		if !s.asks(gi, check) {
			continue
		}
		for k, n := range names {
			if n == "" {
				continue
			}
			if !fitsZone(n, g.zone) {
				c.log.Debug("name not asked of a domain list", "check", check.String(), "list", g.name, "reason", nameError(n, tooLongForZone).Error())
				continue
			}
			s.ask(gi, &keys, k, check)
		}
	}
	if old != ([2]string{}) {
		// Only a replaced name leaves lookups no check asks.
		s.prune()
	}
	return err
}

// askedNames returns the names domain lists are asked about for a name
// the client showed: the name itself, which finds listed host names and
// subdomains, and its registered domain, which finds the domains that
// lists such as Spamhaus DBL mostly list (a HELO of mail.spammer.example
// is caught by a listing of spammer.example); "" when that is the name
// itself. The levels between are not asked: two queries per name bound
// the cost and the query budget. A name that is another check's
// registered domain (often the sender domain of a HELO name) is its own
// registered domain, without a second look at the public suffix list.
func (s *Session) askedNames(name string) ([2]string, error) {
	n, err := normalizeName(name)
	if err != nil {
		return [2]string{}, err
	}
	for _, names := range s.names {
		if names[1] == n {
			return [2]string{n, ""}, nil
		}
	}
	return [2]string{n, registeredDomain(n)}, nil
}

// asks reports whether an active entry of domain group gi checks check.
func (s *Session) asks(gi int, check Check) bool {
	c := s.c
	for _, li := range c.dgroups[gi].lists {
		if s.dActive[gi]&c.entries[li].bit != 0 && c.cfg.Lists[li].Checks.Has(check) {
			return true
		}
	}
	return false
}

// find returns the index of the live lookup of name in domain group gi, or
// -1; s.mu is held.
func (s *Session) find(gi int, name string) int {
	for k := range s.lookups {
		if lk := &s.lookups[k]; lk.group == gi && lk.name == name && lk.state != lookupExpired {
			return k
		}
	}
	return -1
}

// nameKeys are an Ask's names with what their cache lookups share: each
// name's hash and the cache's clock, worked out when first needed, once
// for every zone. A name the session already has an answer for needs
// neither.
type nameKeys struct {
	cache   *Cache
	names   [2]string
	sums    [2][16]byte
	hashed  [2]bool
	now     uint32
	clocked bool
}

// key is the cache key of name i in zone.
func (k *nameKeys) key(zone uint32, i int) keyName {
	if !k.hashed[i] {
		k.sums[i], k.hashed[i] = k.cache.nameSum(k.names[i]), true
	}
	return keyName{zone: zone, sum: k.sums[i]}
}

// clock is the cache's clock, read once.
func (k *nameKeys) clock() uint32 {
	if !k.clocked {
		k.now, k.clocked = k.cache.clock(), true
	}
	return k.now
}

// ask looks name i of keys up in domain group gi for check: an answer the
// session has already got serves again, a cached one is taken at once,
// else DNS is asked in the background.
func (s *Session) ask(gi int, keys *nameKeys, i int, check Check) {
	c := s.c
	name := keys.names[i]
	s.mu.Lock()
	if k := s.find(gi, name); k >= 0 {
		lk := &s.lookups[k]
		if lk.checks.Has(check) {
			s.mu.Unlock()
			return
		}
		lk.checks |= Checks(check)
		if lk.state == lookupPending {
			// The lookup reports to the Observer for check too.
			s.mu.Unlock()
			return
		}
		a := lk.a
		s.mu.Unlock()
		a.cached = true
		s.report(gi, Checks(check), name, &a, 0)
		return
	}
	g := &c.dgroups[gi]
	active := s.dActive[gi]
	var key keyName
	var pre *answer
	if c.cache != nil {
		// Under s.mu (the cache never takes it), so that a cached answer
		// is recorded with the lookup in one step.
		key = keys.key(g.zoneID, i)
		if e, ok := c.cache.getName(key, keys.clock()); ok {
			a := e.answer()
			if c.needTXT(g, active, &a) {
				if txt, ok := c.cache.getNameTXT(key); ok {
					a.txt = txt
				} else {
					// A copy, so that a stays on the stack in the
					// common case below.
					pre = new(answer)
					*pre = a
				}
			}
			if pre == nil {
				s.add(nameLookup{group: gi, name: name, checks: Checks(check), state: lookupDone, a: a})
				s.mu.Unlock()
				s.report(gi, Checks(check), name, &a, 0)
				return
			}
		}
	}
	id := s.add(nameLookup{group: gi, name: name, checks: Checks(check)})
	s.mu.Unlock()

	if s.notify == nil {
		s.notify = make(chan struct{}, 1)
	}
	if !c.goLookup(func() {
		start := c.now()
		var a answer
		if pre != nil {
			a = *pre
		} else {
			a = c.resolveName(g, key, name)
		}
		if c.needTXT(g, active, &a) {
			a.txt = c.resolveNameTXT(g, key, name)
		}
		s.complete(id, gi, name, check, &a, c.now().Sub(start))
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}) {
		a := answer{kind: answerError, err: errClosed}
		s.complete(id, gi, name, check, &a, 0)
	}
}

// add appends lk to the session's lookups with a new id, and returns the
// id; s.mu is held.
func (s *Session) add(lk nameLookup) uint32 {
	s.nextID++
	lk.id = s.nextID
	if s.lookups == nil {
		// Room for a name and its registered domain, for two checks (a
		// HELO name, a sender domain), in two zones that share the
		// names, as they mostly do.
		s.lookups = make([]nameLookup, 0, 4)
	}
	s.lookups = append(s.lookups, lk)
	return lk.id
}

// complete records the answer of lookup id and reports it to the Observer
// for every check that asked the name (check alone when the session has
// already dropped the lookup). It runs in the session's goroutine or in
// the lookup's.
func (s *Session) complete(id uint32, gi int, name string, check Check, a *answer, dur time.Duration) {
	checks := Checks(check)
	s.mu.Lock()
	for k := range s.lookups {
		if lk := &s.lookups[k]; lk.id == id {
			checks = lk.checks
			if lk.state == lookupPending {
				lk.state, lk.a, lk.dur = lookupDone, *a, dur
			}
			break
		}
	}
	s.mu.Unlock()
	s.report(gi, checks, name, a, dur)
}

// report tells the Observer one Result per active entry of domain group gi
// and check of checks that the entry is asked about.
func (s *Session) report(gi int, checks CheckSet, name string, a *answer, dur time.Duration) {
	c := s.c
	if c.obs == nil {
		return
	}
	for _, li := range c.dgroups[gi].lists {
		l := &c.cfg.Lists[li]
		if s.dActive[gi]&c.entries[li].bit == 0 {
			continue
		}
		for chk := range numChecks {
			if !checks.Has(chk) || !l.Checks.Has(chk) {
				continue
			}
			r := resultOf(l, a)
			if r.Outcome == Listed {
				r.TXT = a.txt
			}
			r.Check, r.Name, r.Duration = chk, name, dur
			c.obs.LookupDone(r)
		}
	}
}

// prune drops the finished lookups of names no check asks any more (a
// replaced sender); those still out stay until they end.
func (s *Session) prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.lookups[:0]
	for _, lk := range s.lookups {
		if lk.state == lookupPending || s.current(lk.name) {
			kept = append(kept, lk)
		}
	}
	clear(s.lookups[len(kept):])
	s.lookups = kept
}

// current reports whether some check's names include name.
func (s *Session) current(name string) bool {
	for _, names := range s.names {
		if names[0] == name || names[1] == name {
			return true
		}
	}
	return false
}

// domainState is what a domain entry's names got, taken together.
type domainState struct {
	// codes are the listed answers' A records together; weight is what
	// they add by the entry's filters.
	codes  codeSet
	weight int
	// pending: a name's answer is still out. open: the entry is asked
	// about a check still to come. failed is the first failure (Error or
	// Timeout), Pending for none.
	pending, open bool
	failed        Outcome
	err           error
	// other is the first Refused or Bogus answer, with its codes.
	other      Outcome
	otherCodes codeSet
	asked      bool
	// overBudget: a name was not asked, the zone's daily query budget
	// spent; it counts as not asked (the client is not refused for it).
	overBudget bool
	// check and name are the first listed name's, else the first asked,
	// else the first not asked for the budget.
	check Check
	name  string
	txt   string
	// cached: every answer came without a new DNS query.
	cached bool
	dur    time.Duration
}

// combine takes domain entry i's answers together, leaving out the names
// of the checks in exclude; s.mu is held.
func (s *Session) combine(i int, exclude CheckSet) domainState {
	c := s.c
	l := &c.cfg.Lists[i]
	gi := c.entries[i].group
	st := domainState{open: l.Checks&exclude != 0, failed: Pending, cached: true}
	listed := false
	for chk := CheckClient; chk < numChecks; chk++ {
		if !l.Checks.Has(chk) || exclude.Has(chk) {
			continue
		}
		for _, n := range s.names[chk] {
			if n == "" {
				continue
			}
			k := s.findAny(gi, n)
			if k < 0 {
				// Not asked: too long with this zone.
				continue
			}
			lk := &s.lookups[k]
			if lk.state != lookupPending && lk.a.kind == answerOverBudget {
				// Not asked: fail open, as for an IP list.
				if !st.asked && !st.overBudget {
					st.check, st.name = chk, n
				}
				st.overBudget = true
				continue
			}
			if !st.asked {
				st.asked, st.check, st.name = true, chk, n
			}
			if lk.state == lookupPending {
				st.pending, st.cached = true, false
				continue
			}
			st.cached = st.cached && lk.a.cached
			st.dur = max(st.dur, lk.dur)
			switch lk.a.kind {
			case answerError, answerTimeout:
				if st.failed == Pending {
					st.failed = Error
					if lk.a.kind == answerTimeout {
						st.failed = Timeout
					}
					st.err = newLookupError(l, lk.a.err, st.failed == Timeout)
				}
				continue
			}
			switch out, _ := l.classify(lk.a.codes); out {
			case Listed:
				if !listed {
					listed = true
					st.check, st.name, st.txt = chk, n, lk.a.txt
					st.codes = lk.a.codes
				} else if lk.a.codes != st.codes {
					st.codes += lk.a.codes
				}
			case Refused, Bogus:
				if st.other == Pending {
					st.other, st.otherCodes = out, lk.a.codes
				}
			}
		}
	}
	if listed {
		_, st.weight = l.classify(st.codes)
	}
	return st
}

// findAny is find that also returns a lookup the session stopped waiting
// for; s.mu is held.
func (s *Session) findAny(gi int, name string) int {
	found := -1
	for k := range s.lookups {
		if lk := &s.lookups[k]; lk.group == gi && lk.name == name {
			found = k
			if lk.state != lookupExpired {
				break
			}
		}
	}
	return found
}

// domainResult is domain entry i's Result from its names' answers, and
// whether some are still out; s.mu is held.
func (s *Session) domainResult(i int) (Result, bool) {
	l := &s.c.cfg.Lists[i]
	st := s.combine(i, 0)
	r := Result{List: l, Check: st.check, Name: st.name, Duration: st.dur, Cached: st.asked && st.cached}
	switch {
	case st.codes != "":
		r.Outcome, r.Matched, r.Codes, r.TXT = Listed, st.weight, st.codes.dedupe().addrs(), st.txt
		if !l.Shadow {
			r.Weight = st.weight
		}
	case st.pending:
		r.Outcome = Pending
	case st.failed != Pending:
		r.Outcome, r.Err = st.failed, st.err
	case st.other != Pending:
		r.Outcome, r.Codes = st.other, st.otherCodes.addrs()
	case st.asked:
		r.Outcome = NotListed
	case st.overBudget:
		r.Outcome = OverBudget
	default:
		r.Outcome = NoName
	}
	return r, st.pending
}

// resolveName asks DNS for a domain group's A records about a name.
func (c *Checker) resolveName(g *group, key keyName, name string) answer {
	return c.query(g, name+"."+g.zone,
		func() (cacheEntry, bool) { return c.cache.peekName(key) },
		func(a *answer) { c.cache.putName(key, a) })
}
