package rbl

import (
	"net/netip"
	"testing"
)

func TestQueryName(t *testing.T) {
	tests := []struct {
		ip, zone, want string
	}{
		{"1.2.3.4", "zen.spamhaus.org", "4.3.2.1.zen.spamhaus.org"},
		{"127.0.0.2", "bl.test", "2.0.0.127.bl.test"},
		{"0.0.0.0", "bl.test", "0.0.0.0.bl.test"},
		{"255.255.255.255", "bl.test", "255.255.255.255.bl.test"},
		{"10.20.100.9", "bl.test", "9.100.20.10.bl.test"},
		{"::ffff:1.2.3.4", "bl.test", "4.3.2.1.bl.test"},
		{"::ffff:127.0.0.2", "bl.test", "2.0.0.127.bl.test"},
		{"::", "bl.test", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test"},
		{"::1", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test"},
		{"2001:db8::1", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"},
		{"2001:DB8:abcd:12::ff00:42:8329", "v6.bl.test", "9.2.3.8.2.4.0.0.0.0.f.f.0.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.v6.bl.test"},
		{"fe80::1%eth0", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.bl.test"},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		if got := QueryName(ip, tt.zone); got != tt.want {
			t.Errorf("QueryName(%s, %s) = %q, want %q", tt.ip, tt.zone, got, tt.want)
		}
		buf := []byte("prefix:")
		if got := string(appendQueryName(buf, ip, tt.zone)); got != "prefix:"+tt.want {
			t.Errorf("appendQueryName(%s, %s) = %q", tt.ip, tt.zone, got)
		}
	}
}

func TestAppendQueryNameDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 128)
	ip := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { buf = appendQueryName(buf[:0], ip, "zen.spamhaus.org") }); n != 0 {
		t.Errorf("appendQueryName allocates %v times, want 0", n)
	}
}
