// Package rbl is rblmilter's DNS blocklist (DNSBL) and allowlist (DNSWL) lookup
// engine, following RFC 5782, for IP lists and domain lists (RHSBL). It knows
// nothing about milters: give it a client address (and the names the client
// shows) and it answers with a Verdict. Use it on its own, for instance in an
// SMTP server written in Go.
//
// The engine's first duty is to never mistake an error for a listing: list
// operators' error codes (127.255.255.x and friends), answers outside
// 127.0.0.0/8 from NXDOMAIN-hijacking resolvers and DNS failures are all kept
// apart from real listings (see Outcome).
//
// # Using it
//
// Parse the lists (ParseSites reads Postfix postscreen_dnsbl_sites syntax,
// zone[=filter][*weight]), build a resolver (NewResolver, with the servers of
// ServersFromResolvConf) and a cache (NewCache), then a Checker:
//
//	checker, err := rbl.NewChecker(rbl.Config{
//		Lists:              lists,
//		Threshold:          3,               // reject at score >= 3
//		AllowlistThreshold: -1,              // accept early at score <= -1
//		Timeout:            2 * time.Second, // per list
//		FetchTXT:           true,
//	}, rbl.Options{Resolver: resolver, Cache: cache})
//	...
//	defer checker.Close() // cancels and waits for background lookups
//	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // whole-check budget
//	defer cancel()
//	v := checker.Check(ctx, clientAddr)
//	// v.Decision, v.Score, v.Early, v.Duration; per list v.Results[i]:
//	// List, Outcome, Codes, TXT, Err
//
// FetchTXT fetches the TXT record of every listing with its A answer. A
// milter that shows one list's text in its reply leaves it off and asks
// Session.TXT for that one when it writes the reply: one TXT query per
// refusal instead of one per listing list, and no decision waits for a
// text.
//
// The package example (Example in example_test.go) is a complete, runnable
// version with an in-memory resolver; go test ./rbl/ runs it and checks its
// output. ExampleNewResolver shows the resolver for production. Every syntax
// error names the entry and the wrong part, e.g.
//
//	bad DNSBL site "zen.spamhaus.org=127.0.0.[2..1x]": filter "127.0.0.[2..1x]": octet 4 "[2..1x]": "1x" is not a number from 0 to 255
//
// # Domain lists and sessions
//
// A List with Type DomainList is asked about names (RFC 5782 §2.3: Spamhaus
// DBL and ZRD, SURBL, URIBL), the ones its Checks name: the client's verified
// name (CheckClient), its PTR name (CheckReverseClient), its HELO name
// (CheckHelo) and its sender's domain (CheckSender). An SMTP server learns
// them stage by stage, so a Session asks them as they come:
//
//	s := checker.Start(clientAddr)      // IP lists start at once
//	s.Ask(rbl.CheckClient, verifiedName) // at connect
//	v := s.Verdict(ctx, rbl.Checks(rbl.CheckHelo, rbl.CheckSender))
//	// v.Settled: nothing still to come can change v.Decision
//	s.Ask(rbl.CheckHelo, heloName)
//	v = s.Peek(rbl.Checks(rbl.CheckSender)) // what is in, without waiting
//	s.Ask(rbl.CheckSender, mailFrom)       // "<user@example.com>", "<>"
//	v = s.Verdict(ctx, 0)                  // every answer of this transaction
//
// Each name is normalized (lower case, IDNs as A-labels, no trailing dot) and
// asked as it is and as its registered domain (golang.org/x/net/publicsuffix:
// mail.example.co.uk and example.co.uk), once per query zone whatever asks
// it; names that cannot be asked (address literals, single labels,
// localhost, invalid names, the null sender) are not looked up, and Ask says
// why (see DomainQueryName and SenderDomain). A list entry adds its weight
// once however many of its names are listed. A negative weight on a check
// the client chooses (helo, sender, reverse_client) is refused by
// NewChecker: any client could allowlist itself. Check is a Session that asks
// no names.
//
// # What counts as listed
//
// Every list lookup ends in exactly one Outcome, and only Listed ever adds
// weight: A records in 127.0.0.0/8 that pass the list's filters (every code
// is kept in Result.Codes). NotListed is NXDOMAIN, NOERROR without A records,
// or codes that match no filter. Refused (an operator error code:
// 127.255.255.0/24, 127.0.1.255, 127.0.2.255, 127.0.0.255) and Bogus (any A record outside
// 127.0.0.0/8) never count and win over the filters. Error (SERVFAIL,
// REFUSED, network error, mismatched answer) and Timeout count as not listed
// unless the list has OnError: FailTempfail; then the verdict is Tempfail,
// but only when that list could have changed the decision. Pending lists had
// not answered when an early decision was taken; Disabled ones were not asked
// (address family off, or the Health hook took the list out), nor OverBudget
// ones (their DailyQueries spent, see Budget); NoName domain lists had no
// name to ask, and NotAuthenticated lists (Sessions = SessionsAuthenticated)
// are asked only once Session.Authenticated says the client logged in. The
// same rules,
// in the daemon's terms, are in docs/decisions.md of the repository.
//
// # Scoring and early decisions
//
// The score is the sum of the weights of the counted entries; Shadow lists,
// and lists whose Sessions exclude the client (by Session.Authenticated; a
// session starts unauthenticated), are looked up and reported
// (Result.Matched) but never counted. The verdict is Reject when score >=
// Config.Threshold, Allowlisted when Config.AllowlistThreshold is negative
// and score <= it, Tag when Config.TagThreshold is positive and score >= it,
// else Accept; it is settled only when neither the reject nor the tag level
// can change. A filter
// with its own weight (127.0.0.4*2) adds it when any A record matches; the
// filters without one add the list's Weight once between them; a pattern adds
// its weight once however many A records match it. The same zone may appear
// several times (postscreen style); such entries share one DNS query.
//
// All lists are asked in parallel. Check returns as soon as the decision can
// no longer change whatever the pending lists answer (it bounds the least and
// greatest weight each pending list could add); the pending lookups go on in
// the background under their own timeout to fill the cache, and Close cancels
// and waits for them. Results come in configuration order; unfinished ones
// are Pending and Verdict.Early is set. The decision itself never depends on
// timing.
//
// # Lists
//
// ParseSite reads one postscreen_dnsbl_sites entry verbatim
// (zone[=d.d.d.d][*weight], each d a number or a [...] set of ;-separated
// numbers and n..m ranges, default weight 1). The structured form is List:
// Zone, display Name, Weight, Filters (each from ParseFilter: a postscreen
// pattern, a CIDR 127.0.0.0/24, or an Exim-style bitmask &0.0.0.4 matching
// codes with every mask bit set, each with an optional *weight), Timeout,
// IPv4/IPv6, OnError, Shadow, Monitor, DailyQueries, and Key: a DQS-style access key sent as
// the first label (KEY.zen.dq.spamhaus.net). The key never appears in any
// output: String, %v/%+v/%#v, JSON, errors, logs and TXT texts all show the
// display name or [key].
//
// # Resolver and cache
//
// NewResolver (github.com/miekg/dns) asks its servers in order over UDP with
// EDNS0 (1232 bytes), retries over TCP when an answer is truncated, checks
// that the answer's ID and question match, and moves to the next server on
// timeout, SERVFAIL, REFUSED or a mismatch; the context deadline is split
// among the servers not yet tried. A UDP query without an answer is sent
// again on the same socket after ResolverConfig.Retransmit, then after
// twice as long, while the server's share of the time lasts. Any other
// Resolver implementation can be plugged in.
//
// Cache (hashicorp/golang-lru/v2) is bounded (Size), keeps positive answers
// for their TTL and NXDOMAIN/NODATA for the RFC 2308 negative TTL (min of SOA
// TTL and SOA MINIMUM), both clamped to MinTTL..MaxTTL (default 60s..1h), and
// failures only for ErrorTTL (default 0: not cached). It takes an injected
// clock and may be shared by several Checkers (old and new across a config
// reload). Concurrent checks of the same client and zone share one DNS query.
// Cache.Stats gives hits, misses, evictions and entries for metrics.
//
// # Hooks
//
// Options.Observer (optional) is told every DNS query sent (QuerySent, by
// list display name), every list result (LookupDone: outcome, codes,
// duration, cached) and every verdict (VerdictDone) — bounded labels only,
// never an address. Options.Health (optional) decides per check which lists
// are enabled (Enabled; a disabled list is not asked and shows Disabled) and
// hears every fresh DNS answer classified (Observe), so a monitor can react to
// error codes, bogus answers or timeouts seen in live traffic; Monitor is
// such a hook, probing RFC 5782 test points and canaries, and it tells
// what it finds to a HealthObserver (MonitorOptions.Observer).
// Options.Budget (optional, one per process) counts the queries each zone
// sends over a rolling 24 hours and holds it to its lists' DailyQueries.
//
// The engine itself does not depend on a metrics system: Observer and
// HealthObserver are all it reports to. Metrics implements both for
// Prometheus (NewMetrics registers the engine's, the monitor's, the
// cache's and the budget's series); it is the only part of the package
// that imports client_golang.
//
// # Testing with a fake DNSBL
//
// Package rbl/rbltest is a fake DNS server on 127.0.0.1 (UDP and TCP, one
// port) for tests of code that uses rbl:
//
//	srv := rbltest.NewServer(t) // stopped by t.Cleanup
//	srv.Set(rbl.QueryName(netip.MustParseAddr("192.0.2.1"), "bl.test"), rbltest.A("127.0.0.2"), rbltest.TXT("listed"))
//	srv.Set(rbl.QueryName(netip.MustParseAddr("192.0.2.2"), "bl.test"), rbltest.Delay(50*time.Millisecond))
//	resolver, _ := rbl.NewResolver(rbl.ResolverConfig{Servers: []string{srv.Addr()}})
//
// Options: A, TXT, TTL, NegativeTTL, NoSOA, Rcode, Delay, Hold(release chan),
// Silent, Truncate, Mismatch, and for fault tests WrongID, Garbage, Oversize,
// TCPHangUp, TCPRcode, Alternate; SetTree answers a name and every name below
// it (a listed network), SetDefault shapes unknown names (NXDOMAIN by
// default), Stop/Start take the server down and back on the same port.
// Counters: Queries(name), TCPQueries(name), TotalQueries, InFlight,
// MaxInFlight, and WaitInFlight(t, n) / WaitQueries(t, name, n) to
// synchronise without sleeping.
//
// The engine's benchmark figures are in docs/performance.md of the repository.
package rbl
