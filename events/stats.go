package events

import (
	"slices"
	"strings"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// DayTotal is how long one device spent inside a fence on one day.
type DayTotal struct {
	User    string `json:"user"`
	Device  string `json:"device"`
	Date    string `json:"date"` // YYYY-MM-DD in the requested time zone
	Seconds int64  `json:"seconds"`
}

// TimeInside adds up, per device and day, the time between each enter and
// the following leave of fence, counting only [from, to] (UNIX s). A
// device whose first event in the range is a leave was inside from the
// start; one still inside at the end counts until to. events must be in
// ascending TST order; other fences' events are skipped.
func TimeInside(events []storage.Event, fence string, from, to int64, loc *time.Location) []DayTotal {
	type dev struct{ user, device string }
	enter := map[dev]int64{}
	seen := map[dev]bool{}
	totals := map[dev]map[string]int64{}
	add := func(d dev, a, b int64) {
		a, b = max(a, from), min(b, to)
		for a < b {
			t := time.Unix(a, 0).In(loc)
			next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc).Unix()
			end := min(b, next)
			if totals[d] == nil {
				totals[d] = map[string]int64{}
			}
			totals[d][t.Format(time.DateOnly)] += end - a
			a = end
		}
	}
	for _, ev := range events {
		if ev.Fence != fence {
			continue
		}
		d := dev{ev.User, ev.Device}
		switch ev.Event {
		case "enter":
			if _, in := enter[d]; !in {
				enter[d] = ev.TST
			}
		case "leave":
			start, in := enter[d]
			if !in && !seen[d] {
				start, in = from, true // inside before the range began
			}
			if in {
				add(d, start, ev.TST)
			}
			delete(enter, d)
		}
		seen[d] = true
	}
	for d, start := range enter {
		add(d, start, to)
	}
	var out []DayTotal
	for d, days := range totals {
		for date, s := range days {
			if s > 0 {
				out = append(out, DayTotal{User: d.user, Device: d.device, Date: date, Seconds: s})
			}
		}
	}
	slices.SortFunc(out, func(a, b DayTotal) int {
		if c := strings.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
	return out
}
