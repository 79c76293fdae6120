package server

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestRemoteIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, peer, realIP, xff string
		trusted                 []netip.Prefix
		want                    string
	}{
		{"no proxies configured", "127.0.0.1:1", "203.0.113.9", "203.0.113.8", nil, "127.0.0.1"},
		{"untrusted peer's headers ignored", "198.51.100.7:1", "203.0.113.9", "203.0.113.8", trusted, "198.51.100.7"},
		{"trusted peer, X-Real-IP", "127.0.0.1:1", "203.0.113.9", "", trusted, "203.0.113.9"},
		{"trusted peer, X-Forwarded-For", "127.0.0.1:1", "", "203.0.113.8", trusted, "203.0.113.8"},
		{"a chain of proxies", "127.0.0.1:1", "10.0.0.5", "203.0.113.8, 10.0.0.5", trusted, "203.0.113.8"},
		{"the client's own claim on the left is not believed", "127.0.0.1:1", "", "1.2.3.4, 203.0.113.8, 10.0.0.5", trusted, "203.0.113.8"},
		{"several header lines", "127.0.0.1:1", "", "1.2.3.4\n203.0.113.8", trusted, "203.0.113.8"},
		{"only proxies named", "127.0.0.1:1", "", "10.0.0.7, 10.0.0.5", trusted, "10.0.0.7"},
		{"trusted peer, no headers", "[::ffff:127.0.0.1]:1", "", "", trusted, "::ffff:127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			if tc.realIP != "" {
				r.Header.Set("X-Real-IP", tc.realIP)
			}
			if tc.xff != "" {
				for _, line := range strings.Split(tc.xff, "\n") {
					r.Header.Add("X-Forwarded-For", line)
				}
			}
			if got := remoteIP(r, tc.trusted); got != tc.want {
				t.Errorf("remoteIP = %q, want %q", got, tc.want)
			}
		})
	}
}
