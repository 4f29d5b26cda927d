package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ---- rotations

const rotationCols = `id, hash, family, account, successor, rotated_at, grace_until, keep_until`

func scanRotation(sc scanner) (gatehouse.Rotation, error) {
	var (
		r                    gatehouse.Rotation
		rotated, grace, keep int64
	)
	err := sc.Scan(&r.ID, &r.Hash, &r.Family, &r.Account, &r.Successor, &rotated, &grace, &keep)
	r.RotatedAt, r.GraceUntil, r.KeepUntil = fromNanos(rotated), fromNanos(grace), fromNanos(keep)
	return r, err
}

func (t *tx) AddRotation(ctx context.Context, r gatehouse.Rotation) error {
	return t.insert(ctx, "rotation of token "+strconv.Quote(r.ID)+" already recorded",
		`INSERT INTO token_rotations (`+rotationCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, nonNil(r.Hash), r.Family, r.Account, r.Successor, nanos(r.RotatedAt), nanos(r.GraceUntil), nanos(r.KeepUntil))
}

func (t *tx) GetRotation(ctx context.Context, id string) (gatehouse.Rotation, error) {
	return get(ctx, t, "rotation", scanRotation, `SELECT `+rotationCols+` FROM token_rotations WHERE id = $1`, id)
}

func (t *tx) ListRotations(ctx context.Context) ([]gatehouse.Rotation, error) {
	return list(ctx, t, scanRotation, `SELECT `+rotationCols+` FROM token_rotations ORDER BY id`)
}

// PruneRotations deletes and returns the ids in one statement.
func (t *tx) PruneRotations(ctx context.Context, before time.Time) ([]string, error) {
	return list(ctx, t, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, `WITH gone AS (DELETE FROM token_rotations r WHERE (r.keep_until <> 0 AND r.keep_until <= $1)
		OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family = r.family OR t.id = r.family)
		RETURNING r.id) SELECT id FROM gone ORDER BY id`, nanos(before))
}
