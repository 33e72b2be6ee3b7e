package rbl

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Session is one SMTP client's lookups, asked stage by stage as the client
// shows more of itself: its address when it connects (Start: the IP
// lists), then its names as they come (Ask: the domain lists; the verified
// client name at connect, the HELO name, the sender domain of each
// transaction). The score is the sum over every list entry. Verdict waits
// for the answers of what was asked, Peek takes what is in without
// waiting; both say whether the decision is settled, given which checks
// the caller still expects names for.
//
// A Session is used by one goroutine. Its lookups run in the background
// and go on filling the cache when the Session is dropped.
type Session struct {
	c *Checker
	v Verdict
	// mark is when the latest stage began (Start or Ask): a verdict's
	// Duration counts from it.
	mark time.Time
	// reported is set once the Observer heard of a settled verdict for
	// the names asked so far.
	reported bool

	// ipPending holds, per IP group, the active entries waiting for DNS;
	// their results come on ipCh.
	ipPending []uint64
	ipCh      chan groupResult

	// authenticated: the client has authenticated (Authenticated), so
	// the entries for authenticated sessions count instead of those for
	// unauthenticated ones. authAsked: the authenticated-only IP groups
	// have been started.
	authenticated, authAsked bool

	// names are the query names (without zone) asked for each check: the
	// name and its registered domain, "" for none.
	names [numChecks][2]string
	// dActive holds, per domain group, the entries not switched off by
	// health at Start; background lookups read it, so it never changes.
	dActive []uint64
	// notify is signalled (never blocking) when a background name lookup
	// ends; it is made before the first one starts.
	notify chan struct{}
	mu     sync.Mutex // guards lookups and nextID
	// lookups are the session's name lookups, one per domain group and
	// name, across checks.
	lookups []nameLookup
	nextID  uint32

	// dActiveBuf is dActive's room for the common case of up to 2
	// domain groups.
	dActiveBuf [2]uint64
}

// ipSession is a Session of an IP-only configuration of up to 4 lists,
// with its results in the same allocation. (Larger buffers cost more in
// zeroing and garbage collection than the allocation they save.)
type ipSession struct {
	Session
	results [ipResults]Result
}

// ipResults is how many list entries an ipSession has room for.
const ipResults = 4

// namedSession is a Session with domain lists, allocated in one piece
// with room for the results of an IP-and-domain configuration and for the
// name lookups of a HELO name and a sender domain in two zones, so that
// such a session costs one allocation as an IP-only one does. An IP-only
// session does not pay for the room, nor a namedSession for an
// ipSession's.
type namedSession struct {
	Session
	results [namedResults]Result
	lookups [4]nameLookup
}

// namedResults is how many list entries a namedSession has room for.
const namedResults = 6

// Start begins a client's session: every IP list is looked up for ip in
// parallel, from the cache where it can. Domain lists wait for Ask.
func (c *Checker) Start(ip netip.Addr) *Session {
	var s *Session
	n := len(c.cfg.Lists)
	switch {
	case len(c.dgroups) > 0 && n <= namedResults:
		ns := &namedSession{}
		s = &ns.Session
		s.v.Results = ns.results[:n]
		s.lookups = ns.lookups[:0]
	case n <= ipResults:
		is := &ipSession{}
		s = &is.Session
		s.v.Results = is.results[:n]
	default:
		s = &Session{v: Verdict{Results: make([]Result, n)}}
	}
	s.c, s.mark = c, c.now()
	s.v.IP = ip
	s.startIP(false)
	if len(c.dgroups) > 0 {
		s.startDomain()
	}
	return s
}

// Authenticated tells the session whether the client has authenticated
// (SMTP AUTH; an MTA knows it at MAIL FROM). From then on the entries with
// Sessions = SessionsAuthenticated or SessionsAll count and those with
// SessionsUnauthenticated do not (their answers stay in the Results, with
// Weight 0); the first time it is true, the authenticated-only IP lists
// are looked up. Until it is called, the client counts as not
// authenticated.
func (s *Session) Authenticated(yes bool) {
	if yes == s.authenticated && (!yes || s.authAsked) {
		return
	}
	s.authenticated = yes
	s.reported = false
	s.mark = s.c.now()
	if yes && !s.authAsked {
		s.authAsked = true
		s.startIP(true)
	}
}

// startIP looks the client's address up on every IP group that counts
// only for authenticated clients (authOnly), or on every other one: cached
// answers are applied at once, the others are asked in the background.
// Before the client has authenticated, the entries of the authenticated-only
// groups are NotAuthenticated.
func (s *Session) startIP(authOnly bool) {
	c := s.c
	ip := s.v.IP
	is4 := ip.Unmap().Is4()
	var cacheNow uint32
	if c.cache != nil {
		cacheNow = c.cache.clock()
	}
	for gi := range c.groups {
		g := &c.groups[gi]
		if g.authOnly && !authOnly {
			for _, li := range g.lists {
				s.v.Results[li] = Result{List: &c.cfg.Lists[li], Outcome: NotAuthenticated}
			}
			continue
		}
		if g.authOnly != authOnly {
			continue
		}
		var active uint64
		for _, li := range g.lists {
			l := &c.cfg.Lists[li]
			r := &s.v.Results[li]
			r.List = l
			switch {
			case !ip.IsValid():
				r.Outcome = Error
				r.Err = &LookupError{List: l.String(), msg: "invalid IP address"}
			case is4 && !l.IPv4 || !is4 && !l.IPv6 || c.health != nil && !c.health.Enabled(l):
				r.Outcome = Disabled
			default:
				// Pending: an authenticated-only entry was
				// NotAuthenticated until now.
				*r = Result{List: l}
				active |= c.entries[li].bit
				continue
			}
			if c.obs != nil {
				c.obs.LookupDone(*r)
			}
		}
		if active == 0 {
			continue
		}
		var pre *answer
		if c.cache != nil {
			if e, ok := c.cache.get(g.zoneID, ip, cacheNow); ok {
				a := e.answer()
				if !c.needTXT(g, active, &a) {
					s.applyIP(g, active, &a)
					continue
				}
				if txt, ok := c.cache.getTXT(g.zoneID, ip); ok {
					a.txt = txt
					s.applyIP(g, active, &a)
					continue
				}
				// A copy, so that a stays on the stack in the
				// common case above.
				pre = new(answer)
				*pre = a
			}
		}
		if s.ipCh == nil {
			// Buffered for every group, so a lookup that ends after
			// the session moved on never blocks.
			s.ipCh = make(chan groupResult, len(c.groups))
			s.ipPending = make([]uint64, len(c.groups))
		}
		ch := s.ipCh
		if !c.goLookup(func() { ch <- c.lookupGroup(gi, ip, active, pre) }) {
			a := answer{kind: answerError, err: errClosed}
			s.applyIP(g, active, &a)
			continue
		}
		s.ipPending[gi] = active
	}
}

// applyIP records an IP group's answer, got without waiting (cache hit or
// closed checker).
func (s *Session) applyIP(g *group, active uint64, a *answer) {
	c := s.c
	for _, li := range g.lists {
		if active&c.entries[li].bit == 0 {
			continue
		}
		r := resultOf(&c.cfg.Lists[li], a)
		if r.Outcome == Listed {
			r.TXT = a.txt
		}
		s.v.Results[li] = r
		if c.obs != nil {
			c.obs.LookupDone(r)
		}
	}
}

// takeIP records a background IP lookup's results, unless the session
// stopped waiting for them (a deadline made them Timeout).
func (s *Session) takeIP(gr groupResult) {
	if s.ipPending[gr.group] == 0 {
		return
	}
	s.ipPending[gr.group] = 0
	g := &s.c.groups[gr.group]
	for k, li := range g.lists {
		if gr.active&s.c.entries[li].bit != 0 {
			s.v.Results[li] = gr.results[k]
		}
	}
}

// drainIP takes the IP results that are in, without waiting.
func (s *Session) drainIP() {
	for {
		select {
		case gr := <-s.ipCh:
			s.takeIP(gr)
		default:
			return
		}
	}
}

// Verdict waits for the answers of everything asked so far until the
// decision is certain, or until every one is in, or until ctx ends (then
// the lookups still pending end in Timeout, for this session, and their
// failure policy decides). open are the checks whose names the caller
// still expects (a later SMTP stage, another transaction): lists asked
// about them count as pending, and their current names are left out. The
// verdict is Settled when nothing pending or open can change it; with
// nothing open, it always is (Tempfail when a failed list with
// FailTempfail could have changed it).
//
// The verdict's Results belong to the session and change with its next
// call. A settled verdict's Duration counts from the latest Start or Ask;
// an unsettled one's is 0.
func (s *Session) Verdict(ctx context.Context, open CheckSet) Verdict {
	s.drainIP()
	d, settled, waiting, score := s.decide(open)
	for !settled && waiting {
		select {
		case gr := <-s.ipCh:
			s.takeIP(gr)
		case <-s.notify:
		case <-ctx.Done():
			s.expire(ctx.Err())
		}
		d, settled, waiting, score = s.decide(open)
	}
	return s.finish(d, settled, score)
}

// Peek is Verdict without waiting: what the answers in so far decide.
// Lookups still out stay Pending.
func (s *Session) Peek(open CheckSet) Verdict {
	s.drainIP()
	d, settled, _, score := s.decide(open)
	return s.finish(d, settled, score)
}

// Settled reports whether the decision the answers in so far give is
// certain with the checks in open still to come (their current names left
// out), without waiting and without reporting a verdict.
func (s *Session) Settled(open CheckSet) bool {
	s.drainIP()
	_, settled, _, _ := s.decide(open)
	return settled
}

// finish fills in the verdict and reports a settled one to the Observer,
// once for the names asked so far.
func (s *Session) finish(d Decision, settled bool, score int) Verdict {
	c := s.c
	v := &s.v
	v.Decision, v.Settled, v.Score, v.Early = d, settled, score, false
	if len(c.dgroups) > 0 {
		s.mu.Lock()
		for i := range v.Results {
			if c.entries[i].domain && v.Results[i].Outcome != Disabled {
				var pending bool
				v.Results[i], pending = s.domainResult(i)
				// A domain list already listed for one name shows
				// Listed while others are out.
				v.Early = v.Early || pending
			}
		}
		s.mu.Unlock()
	}
	if s.authenticated || c.authLists {
		// Entries that do not count for this client show what they
		// would have added as Matched only, as shadow entries do.
		for i := range v.Results {
			if r := &v.Results[i]; r.List != nil && !r.List.Sessions.counts(s.authenticated) {
				r.Weight = 0
			}
		}
	}
	for i := range v.Results {
		if v.Results[i].Outcome == Pending {
			v.Early = true
			break
		}
	}
	v.Duration = 0
	if settled {
		v.Duration = c.since(s.mark)
	}
	if settled && !s.reported {
		s.reported = true
		if c.obs != nil {
			c.obs.VerdictDone(*v)
		}
	}
	return *v
}

// expire ends, for this session, every lookup still pending when the
// caller's context ended.
func (s *Session) expire(err error) {
	msg := "no answer before the check's deadline"
	if !errors.Is(err, context.DeadlineExceeded) {
		msg = "check cancelled before an answer"
	}
	c := s.c
	for gi, mask := range s.ipPending {
		if mask == 0 {
			continue
		}
		s.ipPending[gi] = 0
		for _, li := range c.groups[gi].lists {
			if mask&c.entries[li].bit != 0 {
				l := &c.cfg.Lists[li]
				s.v.Results[li] = Result{List: l, Outcome: Timeout, Err: &LookupError{List: l.String(), Timeout: true, msg: msg}}
			}
		}
	}
	s.mu.Lock()
	for k := range s.lookups {
		if lk := &s.lookups[k]; lk.state == lookupPending {
			lk.state = lookupExpired
			lk.a = answer{kind: answerTimeout, err: errors.New(msg)}
		}
	}
	s.mu.Unlock()
}

// decide computes the score of the answers in so far and whether the
// decision is certain whatever the pending lookups and the open checks
// bring. Pending lists, lists asked about an open check, and failed lists
// whose policy is FailTempfail may still add anything between their least
// and greatest weight (for a domain list, given the codes its names got so
// far); the decision is certain when it is the same at both ends. waiting
// reports lookups still out. When nothing is waiting or open and it is
// still uncertain, a failed FailTempfail list could have changed it:
// Tempfail.
func (s *Session) decide(open CheckSet) (d Decision, settled, waiting bool, score int) {
	c := s.c
	lo, hi, opened := 0, 0, false
	if len(c.dgroups) > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	for i := range s.v.Results {
		r := &s.v.Results[i]
		if r.List.Shadow || !r.List.Sessions.counts(s.authenticated) {
			continue
		}
		e := &c.entries[i]
		if e.domain {
			if r.Outcome == Disabled {
				continue
			}
			st := s.combine(i, open)
			score += st.weight
			if st.open || st.pending || st.failed != Pending && r.List.OnError == FailTempfail {
				rlo, rhi := r.List.rangeGiven(st.codes)
				lo += rlo - st.weight
				hi += rhi - st.weight
				waiting = waiting || st.pending
				opened = opened || st.open
			}
			continue
		}
		switch {
		case r.Outcome == Pending:
			lo += e.lo
			hi += e.hi
			waiting = true
		case r.Outcome.Failed() && r.List.OnError == FailTempfail:
			lo += e.lo
			hi += e.hi
		default:
			score += r.Weight
		}
	}
	lo += score
	hi += score
	threshold, allow, tag := c.cfg.Threshold, c.cfg.AllowlistThreshold, c.cfg.TagThreshold
	// Below the reject level, the score so far says whether the client
	// is tagged.
	accepted := Accept
	if tag > 0 && score >= tag {
		accepted = Tag
	}
	switch {
	case lo >= threshold:
		return Reject, true, waiting, score
	case allow < 0 && hi <= allow:
		return Allowlisted, true, waiting, score
	case hi < threshold && (allow == 0 || lo > allow):
		// Not refused and not allowlisted, whatever comes: settled once
		// the tag level cannot change either. Only a failed list with
		// FailTempfail can leave it open with nothing to wait for: it
		// could not have refused the client, so the answers in decide.
		switch {
		case tag == 0 || hi < tag:
			return Accept, true, waiting, score
		case lo >= tag:
			return Tag, true, waiting, score
		case waiting:
			return accepted, false, true, score
		case opened:
			return accepted, false, false, score
		}
		return accepted, true, false, score
	case waiting:
		return accepted, false, true, score
	case opened:
		return accepted, false, false, score
	}
	return Tempfail, true, false, score
}
