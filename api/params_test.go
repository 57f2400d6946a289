package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
)

func paramTime(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		end  bool
		want time.Time // zero: an error
	}{
		// Every layout, as from and as to.
		{"2024-05-01T10:11:12Z", false, paramTime(2024, 5, 1, 10, 11, 12)},
		{"2024-05-01T10:11:12Z", true, paramTime(2024, 5, 1, 10, 11, 12)},
		{"2024-05-01T10:11:12+02:00", false, paramTime(2024, 5, 1, 8, 11, 12)},
		{"2024-05-01T00:11:12-03:30", false, paramTime(2024, 5, 1, 3, 41, 12)},
		{"2024-05-01T10:11:12.5Z", false, paramTime(2024, 5, 1, 10, 11, 12).Add(500 * time.Millisecond)},
		{"2024-05-01T10:11:12.123456789+00:00", false, paramTime(2024, 5, 1, 10, 11, 12).Add(123456789)},
		{"2024-05-01T10:11:12", false, paramTime(2024, 5, 1, 10, 11, 12)}, // the frontend's form
		{"2024-05-01T10:11:12", true, paramTime(2024, 5, 1, 10, 11, 12)},
		{"2024-05-01T10:11Z", false, paramTime(2024, 5, 1, 10, 11, 0)},
		{"2024-05-01T10:11+01:00", false, paramTime(2024, 5, 1, 9, 11, 0)},
		{"2024-05-01T10:11", false, paramTime(2024, 5, 1, 10, 11, 0)},
		{"2024-05-01 10:11:12", false, paramTime(2024, 5, 1, 10, 11, 12)},
		{"2024-05-01", false, paramTime(2024, 5, 1, 0, 0, 0)},
		{"2024-05-01", true, paramTime(2024, 5, 1, 23, 59, 59)}, // to=date includes the whole day
		{"2024-02-29", true, paramTime(2024, 2, 29, 23, 59, 59)},
		{"2024-12-31", true, paramTime(2024, 12, 31, 23, 59, 59)},
		// UNIX seconds.
		{"1714557120", false, paramTime(2024, 5, 1, 9, 52, 0)},
		{"1714557120", true, paramTime(2024, 5, 1, 9, 52, 0)},
		{"946684800", false, paramTime(2000, 1, 1, 0, 0, 0)},
		// Garbage.
		{"", false, time.Time{}},
		{"garbage", false, time.Time{}},
		{"yesterday", true, time.Time{}},
		{"2024-13-01", false, time.Time{}},
		{"2024-02-30", true, time.Time{}},
		{"2024-05-01T25:00", false, time.Time{}},
		{"2024-05-01T10:11:12 Z", false, time.Time{}},
		{"01/05/2024", false, time.Time{}},
		{"12345", false, time.Time{}}, // too short for UNIX seconds
		{"1714557120x", false, time.Time{}},
		{"2024-05-01T10:11:12Z2", false, time.Time{}},
	}
	for _, tc := range tests {
		name := tc.in
		if tc.end {
			name += " (to)"
		}
		t.Run(name, func(t *testing.T) {
			got, err := parseTime(tc.in, tc.end)
			if tc.want.IsZero() {
				if err == nil {
					t.Errorf("parseTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("parseTime(%q, %v) = %v, want %v", tc.in, tc.end, got, tc.want)
			}
		})
	}
}

// newContext builds an echo context for req.
func paramContext(req *http.Request) *echo.Context {
	return echo.New().NewContext(req, httptest.NewRecorder())
}

func TestTimeRange(t *testing.T) {
	now := paramTime(2024, 5, 1, 12, 0, 0)
	tests := []struct {
		name     string
		query    string
		header   http.Header
		from, to time.Time
		err      bool
	}{
		{name: "defaults", from: now.Add(-6 * time.Hour), to: now},
		{name: "to only", query: "to=2024-04-30T10:00:00",
			from: paramTime(2024, 4, 30, 4, 0, 0), to: paramTime(2024, 4, 30, 10, 0, 0)},
		{name: "to as a date", query: "to=2024-04-30",
			from: paramTime(2024, 4, 30, 17, 59, 59), to: paramTime(2024, 4, 30, 23, 59, 59)},
		{name: "from only", query: "from=2024-04-01",
			from: paramTime(2024, 4, 1, 0, 0, 0), to: now},
		{name: "both", query: "from=2024-04-01T00:00:00&to=2024-04-02",
			from: paramTime(2024, 4, 1, 0, 0, 0), to: paramTime(2024, 4, 2, 23, 59, 59)},
		{name: "url-encoded colons", query: "from=2024-04-01T06%3A30%3A00&to=2024-04-01T07%3A00%3A00",
			from: paramTime(2024, 4, 1, 6, 30, 0), to: paramTime(2024, 4, 1, 7, 0, 0)},
		{name: "unix seconds", query: "from=1714500000&to=1714557120",
			from: time.Unix(1714500000, 0), to: time.Unix(1714557120, 0)},
		{name: "headers", header: http.Header{"X-Limit-From": {"2024-04-01"}, "X-Limit-To": {"2024-04-01"}},
			from: paramTime(2024, 4, 1, 0, 0, 0), to: paramTime(2024, 4, 1, 23, 59, 59)},
		{name: "empty values mean the default", query: "from=&to=", from: now.Add(-6 * time.Hour), to: now},
		{name: "bad from", query: "from=garbage", err: true},
		{name: "bad to", query: "to=garbage", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/0/locations?"+tc.query, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			from, to, err := timeRange(paramContext(req), now)
			if tc.err {
				if err == nil {
					t.Errorf("timeRange = %v, %v; want an error", from, to)
				}
				return
			}
			if err != nil {
				t.Fatalf("timeRange: %v", err)
			}
			if !from.Equal(tc.from) || !to.Equal(tc.to) {
				t.Errorf("timeRange = %v .. %v, want %v .. %v", from, to, tc.from, tc.to)
			}
		})
	}
}

func TestParam(t *testing.T) {
	tests := []struct {
		name   string
		method string
		query  url.Values
		form   url.Values
		header http.Header
		param  string
		want   string
	}{
		{name: "nothing", method: "GET", param: "user", want: ""},
		{name: "query", method: "GET", query: url.Values{"user": {"alice"}}, param: "user", want: "alice"},
		{name: "header", method: "GET", header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "carol"},
		{name: "header for device", method: "GET", header: http.Header{"X-Limit-Device": {"pixel7"}}, param: "device", want: "pixel7"},
		{name: "query beats header", method: "GET", query: url.Values{"user": {"alice"}},
			header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "alice"},
		{name: "empty query falls through", method: "GET", query: url.Values{"user": {""}},
			header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "carol"},
		{name: "form on POST", method: "POST", form: url.Values{"user": {"bob"}}, param: "user", want: "bob"},
		{name: "query beats form", method: "POST", query: url.Values{"user": {"alice"}},
			form: url.Values{"user": {"bob"}}, header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "alice"},
		{name: "form beats header", method: "POST", form: url.Values{"user": {"bob"}},
			header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "bob"},
		{name: "form only on POST", method: "PUT", form: url.Values{"user": {"bob"}},
			header: http.Header{"X-Limit-User": {"carol"}}, param: "user", want: "carol"},
		{name: "other parameter", method: "GET", query: url.Values{"user": {"alice"}}, param: "device", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := "/api/0/last"
			if tc.query != nil {
				target += "?" + tc.query.Encode()
			}
			var req *http.Request
			if tc.form != nil {
				req = httptest.NewRequest(tc.method, target, strings.NewReader(tc.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				req = httptest.NewRequest(tc.method, target, nil)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if got := param(paramContext(req), tc.param); got != tc.want {
				t.Errorf("param(%q) = %q, want %q", tc.param, got, tc.want)
			}
		})
	}
}
