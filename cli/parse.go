package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// parseDuration reads a token lifetime: "0" (never expires), a Go
// duration ("30m", "12h", "1h30m"), or whole days with a "d" suffix,
// optionally followed by a Go duration ("7d", "1d12h"). The result is a
// whole number of seconds, since that is what the API takes.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30m, 12h, 7d or 0", s)
	}
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30m, 12h, 7d or 0", s)
		}
		if days > uint64(math.MaxInt64/int64(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = s[i+1:]
	}
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30m, 12h, 7d or 0", s)
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30m, 12h, 7d or 0", s)
		}
		if r > math.MaxInt64-d {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		d += r
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("duration %q is not a whole number of seconds", s)
	}
	if d == 0 && s != "0" {
		// "0s" or "0d" would silently mean "never expires"; say "0".
		return 0, fmt.Errorf("duration %q is zero: use 0 for a token that never expires", s)
	}
	return d, nil
}

// seconds is d in the API's integer seconds.
func seconds(d time.Duration) *int64 {
	n := int64(d / time.Second)
	return &n
}

// parseScope reads a --scope value, resource:action:object. The object is
// everything after the second colon, so it may itself contain colons.
func parseScope(s string) (gatehouse.Scope, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return gatehouse.Scope{}, fmt.Errorf("invalid scope %q: want resource:action:object", s)
	}
	sc := gatehouse.Scope{Resource: parts[0], Action: parts[1], Object: parts[2]}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p || strings.ContainsAny(p, ",\n\r\t") {
			return gatehouse.Scope{}, fmt.Errorf("invalid scope %q: resource, action and object must be non-empty without commas or spaces around them", s)
		}
	}
	return sc, nil
}

// parseTime reads a point in time: RFC 3339 ("2025-03-04T05:06:07Z"), a
// date ("2025-03-04", midnight UTC), or a duration ago ("24h", "7d") at
// now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	if s != "0" {
		if d, err := parseDuration(s); err == nil {
			return now.Add(-d).UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339 (2025-03-04T05:06:07Z), a date (2025-03-04) or a duration ago (24h, 7d)", s)
}
