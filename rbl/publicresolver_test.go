package rbl

import "testing"

func TestIsPublicResolver(t *testing.T) {
	for s, want := range map[string]bool{"1.1.1.1:53": true, "[2001:4860:4860::8888]:53": true, "149.112.112.112": true, "208.67.222.222:53": true, "127.0.0.53:53": false, "192.0.2.1": false, "bogus": false} {
		if isPublicResolver(s) != want {
			t.Errorf("isPublicResolver(%q) != %v", s, want)
		}
	}
}
