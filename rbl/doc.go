// Package rbl is rblmilter's DNS blocklist (DNSBL) and allowlist (DNSWL) lookup
// engine, following RFC 5782. It knows nothing about milters: give it a client
// address and it answers with a Verdict.
//
// The engine's first duty is to never mistake an error for a listing: list
// operators' error codes (127.255.255.x and friends), answers outside
// 127.0.0.0/8 from NXDOMAIN-hijacking resolvers and DNS failures are all kept
// apart from real listings (see Outcome).
package rbl
