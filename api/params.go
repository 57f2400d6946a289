package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
)

// param reads a Recorder API parameter from the query string, a form field
// or an X-Limit-<Name> header, in that order (as the Recorder does).
func param(c *echo.Context, name string) string {
	if v := c.QueryParam(name); v != "" {
		return v
	}
	if c.Request().Method == "POST" {
		if v := c.FormValue(name); v != "" {
			return v
		}
	}
	return c.Request().Header.Get("X-Limit-" + strings.ToUpper(name[:1]) + name[1:])
}

// defaultWindow is the Recorder's default /locations window.
const defaultWindow = 6 * time.Hour

// timeLayouts are the from/to forms accepted, all UTC.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// parseTime reads a from/to value. A date alone means the start of that
// day for "from" and its last second for "to", so to=2024-05-01 includes
// all of May 1st. All digits is a UNIX time.
func parseTime(v string, end bool) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && len(v) > 8 {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		if layout == "2006-01-02" && end {
			t = t.Add(24*time.Hour - time.Second)
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("cannot read time %q: use UTC YYYY-MM-DDTHH:MM:SS, YYYY-MM-DD or UNIX seconds", v)
}

// timeRange reads from/to with the Recorder's defaults: to is now, from is
// six hours before to.
func timeRange(c *echo.Context, now time.Time) (from, to time.Time, err error) {
	to = now
	if v := param(c, "to"); v != "" {
		if to, err = parseTime(v, true); err != nil {
			return
		}
	}
	from = to.Add(-defaultWindow)
	if v := param(c, "from"); v != "" {
		if from, err = parseTime(v, false); err != nil {
			return
		}
	}
	return from, to, nil
}

// givenRange reads the from and to parameters that are present into *from
// and *to (UNIX seconds), leaving the others as they are.
func givenRange(c *echo.Context, from, to *int64) error {
	for _, p := range []struct {
		name string
		end  bool
		dst  *int64
	}{{"from", false, from}, {"to", true, to}} {
		if v := param(c, p.name); v != "" {
			t, err := parseTime(v, p.end)
			if err != nil {
				return errBadRequest(err.Error())
			}
			*p.dst = t.Unix()
		}
	}
	return nil
}
