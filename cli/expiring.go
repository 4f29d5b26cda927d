package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
)

// parseExpiring reads list-tokens --expiring: a positive duration ("7d",
// "36h"); "" is no filter.
func parseExpiring(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expiring %q: want a positive duration such as 7d or 36h", s)
	}
	return d, nil
}

// expiringWithin keeps the tokens that have not expired at now and expire
// within d of it, soonest first. Tokens that never expire are left out.
func expiringWithin(ts []gatehouse.Token, now time.Time, d time.Duration) []gatehouse.Token {
	out := []gatehouse.Token{}
	for _, t := range ts {
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.After(now) && !t.ExpiresAt.After(now.Add(d)) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b gatehouse.Token) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}
