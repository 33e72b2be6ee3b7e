package main

import (
	"github.com/rblmilter/rblmilter/milter"
	"github.com/rblmilter/rblmilter/rbl"
)

// The policy levels' keys: the tag level below the threshold, and what
// each [[list]] adds to the policy (its sessions and its own replies).

// tagThreshold reads tag_threshold, which must lie below threshold (the
// engine's rule).
func tagThreshold(t *table, threshold int) int {
	tag := t.integer("tag_threshold", 0)
	if err := rbl.CheckTagThreshold(tag, threshold); err != nil {
		t.p.addf("tag_threshold", "%s", err)
		return 0
	}
	return tag
}

// listSessions reads a list's sessions key. An authenticated-only list
// cannot work with stage = "connect": the decision is then taken before
// the client can have authenticated.
func listSessions(t *table, stage milter.Stage) rbl.Sessions {
	s := enumOf(t, "sessions", rbl.SessionsUnauthenticated, rbl.Sessions.String,
		rbl.SessionsUnauthenticated, rbl.SessionsAuthenticated, rbl.SessionsAll)
	if s == rbl.SessionsAuthenticated && stage == milter.StageConnect {
		t.p.addf(t.keyPath("sessions"), `"authenticated" needs stage = "rcpt": with stage = "connect" the decision is taken when the client connects, before it can authenticate (SMTP AUTH comes after EHLO), so the list would never count`)
	}
	return s
}

// countAuthenticated applies skip_authenticated = false: the lists for
// unauthenticated sessions then count for authenticated ones too, as every
// list did before lists had sessions.
func countAuthenticated(lists []rbl.List, skip bool) {
	if skip {
		return
	}
	for i := range lists {
		if lists[i].Sessions == rbl.SessionsUnauthenticated {
			lists[i].Sessions = rbl.SessionsAll
		}
	}
}

// listReply reads a list's own reply templates, checked like the global
// ones.
func listReply(t *table) milter.ListReply {
	r := milter.ListReply{
		Reply:         t.str("reply", ""),
		TempfailReply: t.str("tempfail_reply", ""),
	}
	for _, key := range []string{"reply", "tempfail_reply"} {
		if v, _ := t.values[key].(string); t.has(key) && v == "" {
			t.p.addf(t.keyPath(key), `"" is empty (leave the key out to use the global %s)`, key)
		}
	}
	// One field at a time, so that both are reported; the milter's
	// message starts with the key's name.
	for _, field := range []milter.ListReply{{Reply: r.Reply}, {TempfailReply: r.TempfailReply}} {
		if err := milter.ValidateListReply(field); err != nil {
			t.p.addf("", "%s.%s", t.path, err)
		}
	}
	return r
}
