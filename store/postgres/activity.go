package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// hourBucket is the SQL expression of the UTC hour an event's time (Unix
// nanoseconds) falls in, as whole hours since the epoch: floor division,
// so that an hour before 1970 is one bucket too (PostgreSQL's integer
// division truncates toward zero), without arithmetic that could
// overflow on a clamped time.
var hourBucket = func() string {
	h := strconv.FormatInt(int64(time.Hour), 10)
	return `time / ` + h + ` - CASE WHEN time < 0 AND time % ` + h + ` <> 0 THEN 1 ELSE 0 END`
}()

// RequestsByHour counts the token's request events by hour. The
// events_token index (token_id, id) finds the token's events; the type
// and time conditions are checked on those rows.
func (t *tx) RequestsByHour(ctx context.Context, tokenID string, since, until time.Time) ([]gatehouse.HourCount, error) {
	w := &where{}
	w.add("token_id = ?", tokenID)
	w.add("type = ?", gatehouse.EventRequest)
	if !since.IsZero() {
		w.add("time >= ?", nanos(since))
	}
	if !until.IsZero() {
		w.add("time < ?", nanos(until))
	}
	q := `SELECT h, SUM(CASE WHEN decision = 'deny' THEN 0 ELSE count END), SUM(CASE WHEN decision = 'deny' THEN count ELSE 0 END)
		FROM (SELECT ` + hourBucket + ` AS h, decision, count FROM events` + w.String() + `) AS e
		GROUP BY h ORDER BY h`
	return list(ctx, t, scanHourCount, q, w.args...)
}

func scanHourCount(sc scanner) (gatehouse.HourCount, error) {
	var (
		c gatehouse.HourCount
		h int64
	)
	err := sc.Scan(&h, &c.Allowed, &c.Denied)
	c.Hour = time.Unix(h*3600, 0).UTC()
	return c, err
}
