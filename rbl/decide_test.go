package rbl

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

type nopResolver struct{}

func (nopResolver) Query(context.Context, string, uint16) (*dns.Msg, error) {
	return nil, errors.New("not used")
}

// TestDecideBounds pins the early-decision arithmetic: a decision is taken
// only when it is the same whatever the pending (and FailTempfail-failed)
// lists could add.
func TestDecideBounds(t *testing.T) {
	// zen +3, dnswl -2, spamcop +1 (FailTempfail), shadow +5.
	lists := func() []List {
		zen := List{Zone: "zen.test", Weight: 3}
		dnswl := List{Zone: "wl.test", Weight: -2}
		spamcop := List{Zone: "sc.test", Weight: 1, OnError: FailTempfail}
		shadow := List{Zone: "shadow.test", Weight: 5, Shadow: true}
		return []List{zen, dnswl, spamcop, shadow}
	}
	const (
		P = Pending
		N = NotListed
		L = Listed
		E = Error
		T = Timeout
	)
	tests := []struct {
		name      string
		threshold int
		allow     int
		outcomes  [4]Outcome
		decision  Decision
		decided   bool
		score     int
	}{
		{"nothing known", 3, 0, [4]Outcome{P, P, P, P}, Accept, false, 0},
		{"all clean", 3, 0, [4]Outcome{N, N, N, N}, Accept, true, 0},
		{"listing waits for the allowlist", 3, 0, [4]Outcome{L, P, P, P}, Accept, false, 3},
		{"listing certain once the allowlist is clean", 3, 0, [4]Outcome{L, N, P, P}, Reject, true, 3},
		{"clean zen and spamcop: allowlist cannot matter without allow threshold", 3, 0, [4]Outcome{N, P, N, P}, Accept, true, 0},
		{"clean zen and spamcop: allowlist matters with allow threshold", 3, -2, [4]Outcome{N, P, N, P}, Accept, false, 0},
		{"allowlisted", 3, -2, [4]Outcome{N, L, N, N}, Allowlisted, true, -2},
		{"allowlisted early is not certain while zen may list", 3, -2, [4]Outcome{P, L, N, N}, Accept, false, -2},
		{"allow threshold reached whatever spamcop says", 3, -1, [4]Outcome{N, L, P, P}, Allowlisted, true, -2},
		{"spamcop may lift the score above the allow threshold", 3, -2, [4]Outcome{N, L, P, N}, Accept, false, -2},
		{"allowlisted certain", 4, -1, [4]Outcome{N, L, N, P}, Allowlisted, true, -2},
		{"zen and spamcop together cannot reach 5", 5, 0, [4]Outcome{L, N, P, P}, Accept, true, 3},
		{"zen and spamcop reach 4", 4, 0, [4]Outcome{L, N, L, P}, Reject, true, 4},
		{"ignored failure is clean", 3, 0, [4]Outcome{E, N, N, N}, Accept, true, 0},
		{"ignored timeout is clean", 3, 0, [4]Outcome{T, N, N, N}, Accept, true, 0},
		{"tempfail failure that could reject", 1, 0, [4]Outcome{N, N, T, N}, Tempfail, true, 0},
		{"tempfail failure that cannot reach the threshold", 3, 0, [4]Outcome{N, N, E, N}, Accept, true, 0},
		{"tempfail failure after a certain reject", 3, 0, [4]Outcome{L, N, E, N}, Reject, true, 3},
		{"tempfail failure that could tip a listing", 4, 0, [4]Outcome{L, N, T, N}, Tempfail, true, 3},
		{"tempfail failure waits for pending lists", 4, 0, [4]Outcome{P, N, T, N}, Accept, false, 0},
		{"shadow listing never counts", 1, 0, [4]Outcome{N, N, N, L}, Accept, true, 0},
		{"pending shadow list does not block", 3, 0, [4]Outcome{N, N, N, P}, Accept, true, 0},
		{"disabled lists count nothing", 1, 0, [4]Outcome{Disabled, Disabled, N, Disabled}, Accept, true, 0},
		{"refused and bogus count nothing", 1, 0, [4]Outcome{Refused, N, Bogus, N}, Accept, true, 0},
	}
	for _, tt := range tests {
		d, decided, score := decideOn(t, Config{Lists: lists(), Threshold: tt.threshold, AllowlistThreshold: tt.allow}, tt.outcomes)
		if decided != tt.decided || decided && d != tt.decision || score != tt.score {
			t.Errorf("%s: decide = %s, %v, score %d; want %s, %v, score %d", tt.name, d, decided, score, tt.decision, tt.decided, tt.score)
		}
	}
}

// decideOn is the decision a session of cfg's lists takes when their
// answers are outcomes, in order: a Listed entry answered 127.0.0.2 and
// adds its weight for it (a shadow entry nothing).
func decideOn(t *testing.T, cfg Config, outcomes [4]Outcome) (d Decision, settled bool, score int) {
	t.Helper()
	c, err := NewChecker(cfg, Options{Resolver: nopResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := Verdict{Results: make([]Result, len(outcomes))}
	for i, o := range outcomes {
		l := &c.cfg.Lists[i]
		v.Results[i] = Result{List: l, Outcome: o}
		if o == Listed && !l.Shadow {
			_, v.Results[i].Weight = l.classifyAddrs(codes("127.0.0.2"))
		}
	}
	s := &Session{c: c, v: v}
	d, settled, _, score = s.decide(0)
	return d, settled, score
}

// TestDecideTagLevel pins the two levels: the verdict is settled only when
// neither the reject nor the tag decision can change, and a failed
// FailTempfail list never tempfails a client it could not have refused.
func TestDecideTagLevel(t *testing.T) {
	// pbl +1, sbl +3, xbl +2 (FailTempfail), dnswl -2; tag at 1, reject at 3.
	lists := []List{
		{Zone: "pbl.test", Weight: 1},
		{Zone: "sbl.test", Weight: 3},
		{Zone: "xbl.test", Weight: 2, OnError: FailTempfail},
		{Zone: "wl.test", Weight: -2},
	}
	const (
		P = Pending
		N = NotListed
		L = Listed
		T = Timeout
	)
	tests := []struct {
		name     string
		tag      int
		outcomes [4]Outcome
		decision Decision
		decided  bool
		score    int
	}{
		{"clean", 1, [4]Outcome{N, N, N, N}, Accept, true, 0},
		{"tag level", 1, [4]Outcome{L, N, N, N}, Tag, true, 1},
		{"tag level waits for lists that could tag or reject", 1, [4]Outcome{L, P, N, N}, Tag, false, 1},
		{"tag level waits for the allowlist that could untag", 1, [4]Outcome{L, N, N, P}, Tag, false, 1},
		{"reject level settles whatever is pending below it", 1, [4]Outcome{L, L, N, N}, Reject, true, 4},
		{"clean waits for a list that could tag", 1, [4]Outcome{N, N, N, P}, Accept, true, 0},
		{"clean so far is not settled while pbl may tag", 1, [4]Outcome{P, N, N, N}, Accept, false, 0},
		{"without a tag level pbl alone cannot matter", 0, [4]Outcome{P, N, N, N}, Accept, true, 0},
		{"tag level from two lists", 2, [4]Outcome{L, N, N, N}, Accept, true, 1},
		{"allowlist takes the client below the tag level", 1, [4]Outcome{L, N, N, L}, Accept, true, -1},
		{"failed tempfail list that could only tag: the answers decide", 1, [4]Outcome{N, N, T, N}, Accept, true, 0},
		{"failed tempfail list that could tip a tagged client into a refusal", 1, [4]Outcome{L, N, T, N}, Tempfail, true, 1},
		{"failed tempfail list beside a tag-level score that stays below reject", 2, [4]Outcome{N, N, T, L}, Accept, true, -2},
	}
	for _, tt := range tests {
		d, decided, score := decideOn(t, Config{Lists: lists, Threshold: 3, TagThreshold: tt.tag}, tt.outcomes)
		if decided != tt.decided || d != tt.decision || score != tt.score {
			t.Errorf("%s: decide = %s, %v, score %d; want %s, %v, score %d", tt.name, d, decided, score, tt.decision, tt.decided, tt.score)
		}
	}
}

func TestNewCheckerErrors(t *testing.T) {
	good := List{Zone: "bl.test", Weight: 1}
	tests := []struct {
		name string
		cfg  Config
		opts Options
		msg  string
	}{
		{"no resolver", Config{}, Options{}, "rbl: no resolver"},
		{"negative threshold", Config{Threshold: -1}, Options{Resolver: nopResolver{}}, "rbl: threshold -1 must be at least 1 (a client is rejected when its score reaches it)"},
		{"positive allowlist threshold", Config{AllowlistThreshold: 2}, Options{Resolver: nopResolver{}}, "rbl: allowlist threshold 2 must be negative, or 0 to switch it off"},
		{"bad zone", Config{Lists: []List{good, {Zone: "a..b"}}}, Options{Resolver: nopResolver{}}, `rbl: list 2 (a..b): zone "a..b": empty label`},
		{"zero filter", Config{Lists: []List{{Zone: "bl.test", Filters: []Filter{{}}}}}, Options{Resolver: nopResolver{}}, "rbl: list 1 (bl.test): filter 1 was not made by ParseFilter"},
		{"bad key", Config{Lists: []List{{Zone: "bl.test", Name: "BL", Key: "my.secret"}}}, Options{Resolver: nopResolver{}}, "rbl: list 1 (BL): key is not a single DNS label (letters, digits, '-', '_'; at most 63)"},
		{"negative list timeout", Config{Lists: []List{{Zone: "bl.test", Timeout: -1}}}, Options{Resolver: nopResolver{}}, "rbl: list 1 (bl.test): negative timeout -1ns"},
		{"tag threshold at the threshold", Config{Threshold: 3, TagThreshold: 3}, Options{Resolver: nopResolver{}}, "rbl: tag threshold 3 must be below threshold 3 (clients from tag_threshold up to threshold are accepted and tagged, from threshold on the action applies)"},
		{"negative tag threshold", Config{TagThreshold: -1}, Options{Resolver: nopResolver{}}, "rbl: tag threshold -1 is negative (0 switches the tag level off)"},
		{"unknown sessions", Config{Lists: []List{{Zone: "bl.test", Sessions: 7}}}, Options{Resolver: nopResolver{}}, "rbl: list 1 (bl.test): unknown sessions 7"},
	}
	for _, tt := range tests {
		_, err := NewChecker(tt.cfg, tt.opts)
		if err == nil || err.Error() != tt.msg {
			t.Errorf("%s: NewChecker error\n got %v\nwant %s", tt.name, err, tt.msg)
		}
	}
}

func TestNewCheckerDefaults(t *testing.T) {
	in := []List{{Zone: "BL.test."}, {Zone: "bl.test", Key: "k3y", Name: "Keyed", Timeout: 7}}
	c, err := NewChecker(Config{Lists: in}, Options{Resolver: nopResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := c.Config()
	if cfg.Threshold != 1 || cfg.Timeout != DefaultTimeout {
		t.Errorf("config defaults: %+v", cfg)
	}
	l := cfg.Lists[0]
	if l.Zone != "BL.test" || l.Name != "BL.test" || !l.IPv4 || !l.IPv6 || l.Timeout != DefaultTimeout {
		t.Errorf("list defaults: %#v ipv4 %v ipv6 %v timeout %s", l, l.IPv4, l.IPv6, l.Timeout)
	}
	if in[0].Name != "" {
		t.Error("NewChecker modified the caller's lists")
	}
	// Same zone with and without a key are different queries.
	if len(c.groups) != 2 || c.groups[0].zone != "bl.test" || c.groups[1].zone != "k3y.bl.test" {
		t.Errorf("groups: %+v", c.groups)
	}
	cfg.Lists[0].Zone = "changed"
	if c.Config().Lists[0].Zone != "BL.test" {
		t.Error("Config() exposes the Checker's lists")
	}
}
