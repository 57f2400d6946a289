package api

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		name, host, origin, forwarded string
		want                          bool
	}{
		{"no origin (not a browser)", "wh.example", "", "", true},
		{"same host", "wh.example:8083", "http://wh.example:8083", "", true},
		{"other site", "wh.example:8083", "https://evil.example", "", false},
		{"proxy rewrote Host", "backend:8083", "https://wh.example", "wh.example", true},
		{"proxy, several hops", "backend:8083", "https://wh.example", "wh.example, inner", true},
		{"proxy, other site", "backend:8083", "https://evil.example", "wh.example", false},
		{"bad origin", "wh.example", "://", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws/last", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.forwarded != "" {
				r.Header.Set("X-Forwarded-Host", tc.forwarded)
			}
			if got := sameOrigin(r); got != tc.want {
				t.Errorf("sameOrigin = %v, want %v", got, tc.want)
			}
		})
	}
}
