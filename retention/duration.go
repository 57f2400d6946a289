package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// ParseDuration reads a duration as the CLI and the API take it: Go's
// units (h, m, s, combined like "1h30m") plus d for days and w for weeks
// ("365d", "2w"). A bare number is refused: "30" could mean days or
// minutes.
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(v, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(v, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit != 0 {
		n, err := strconv.ParseFloat(v[:len(v)-1], 64)
		if err != nil || n < 0 || n > 100*366 {
			return 0, fmt.Errorf("cannot read duration %q: want e.g. 365d, 2w, 12h or 5m", v)
		}
		return time.Duration(n * float64(unit)).Round(time.Second), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("cannot read duration %q: want e.g. 365d, 2w, 12h or 5m", v)
	}
	return d, nil
}

// FormatDuration writes seconds in the largest unit that divides them
// exactly: "365d", "12h", "5m", "90s"; "" for 0.
func FormatDuration(seconds int64) string {
	switch {
	case seconds == 0:
		return ""
	case seconds%86400 == 0:
		return strconv.FormatInt(seconds/86400, 10) + "d"
	case seconds%3600 == 0:
		return strconv.FormatInt(seconds/3600, 10) + "h"
	case seconds%60 == 0:
		return strconv.FormatInt(seconds/60, 10) + "m"
	}
	return strconv.FormatInt(seconds, 10) + "s"
}

// Describe says what a policy does, for people: "keep everything",
// "delete after 365d", "thin to 5m after 30d, delete after 365d".
func Describe(p storage.RetentionPolicy) string {
	var parts []string
	if p.ThinAfter > 0 {
		parts = append(parts, "thin to one point per "+FormatDuration(p.ThinTo)+" after "+FormatDuration(p.ThinAfter))
	}
	if p.DeleteAfter > 0 {
		parts = append(parts, "delete after "+FormatDuration(p.DeleteAfter))
	}
	if len(parts) == 0 {
		return "keep everything"
	}
	return strings.Join(parts, ", ")
}
