package rbl

import (
	"testing"
	"time"
	"unsafe"
)

// A name's cache entry costs what an IPv6 answer's does, however long the
// name: its key is a fixed-size hash.
func TestNameCacheKeys(t *testing.T) {
	if s := unsafe.Sizeof(keyName{}); s != unsafe.Sizeof(key6{}) {
		t.Errorf("keyName is %d bytes, key6 %d", s, unsafe.Sizeof(key6{}))
	}
	clk := &testClock{t: time.Unix(1e9, 0)}
	c, err := NewCache(CacheConfig{Size: 2}, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	dbl, zrd := c.zoneID("dbl.test"), c.zoneID("zrd.test")
	listed := answer{kind: answerRecords, codes: codeSet(appendCode(nil, 0x7f000102)), ttl: time.Hour}
	c.putName(c.nameKey(dbl, "spammer.example"), &listed)
	now := c.clock()
	if e, ok := c.getName(c.nameKey(dbl, "spammer.example"), now); !ok || e.answer().codes != listed.codes {
		t.Error("the name misses its entry")
	}
	for _, miss := range []keyName{c.nameKey(zrd, "spammer.example"), c.nameKey(dbl, "spammer.example2"), c.nameKey(dbl, "spammer.exampl")} {
		if _, ok := c.getName(miss, now); ok {
			t.Errorf("%+v hits", miss)
		}
	}
	// Names and addresses are kept apart, each bounded by Size.
	c.putName(c.nameKey(dbl, "a.example"), &answer{kind: answerNegative})
	c.putName(c.nameKey(dbl, "b.example"), &answer{kind: answerNegative})
	if st := c.Stats(); st.Entries != 2 || st.Evictions != 1 || st.Hits != 1 || st.Misses != 3 {
		t.Errorf("stats %+v, want 2 entries, 1 eviction, 1 hit, 3 misses", st)
	}
	c.putNameTXT(c.nameKey(dbl, "b.example"), "listed", time.Minute)
	if txt, ok := c.getNameTXT(c.nameKey(dbl, "b.example")); !ok || txt != "listed" {
		t.Errorf("TXT %q, %v", txt, ok)
	}
	clk.t = clk.t.Add(2 * time.Hour)
	if _, ok := c.peekName(c.nameKey(dbl, "b.example")); ok {
		t.Error("an expired name answer is served")
	}
	c.purge()
	if c.entries() != 0 {
		t.Errorf("%d entries after Purge", c.entries())
	}
}
