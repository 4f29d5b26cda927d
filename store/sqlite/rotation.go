package sqlite

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ---- rotations

const rotationCols = `id, hash, family, account, successor, rotated_at, grace_until, keep_until`

// rotationGone is the rotations PruneRotations deletes.
const rotationGone = ` FROM token_rotations r WHERE (r.keep_until <> 0 AND r.keep_until <= $1)
	OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family = r.family OR t.id = r.family)`

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
	hash := r.Hash
	if hash == nil {
		hash = []byte{}
	}
	return insert(ctx, t.tx, "rotation of token "+strconv.Quote(r.ID)+" already recorded",
		`INSERT INTO token_rotations (`+rotationCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, hash, r.Family, r.Account, r.Successor, nanos(r.RotatedAt), nanos(r.GraceUntil), nanos(r.KeepUntil))
}

func (t *tx) GetRotation(ctx context.Context, id string) (gatehouse.Rotation, error) {
	r, err := scanRotation(t.tx.QueryRowContext(ctx, `SELECT `+rotationCols+` FROM token_rotations WHERE id = $1`, id))
	return r, one(err, "rotation")
}

func (t *tx) ListRotations(ctx context.Context) ([]gatehouse.Rotation, error) {
	return list(ctx, t, scanRotation, `SELECT `+rotationCols+` FROM token_rotations ORDER BY id`)
}

// PruneRotations lists, then deletes: the transaction holds the write
// lock, so both see the same rows.
func (t *tx) PruneRotations(ctx context.Context, before time.Time) ([]string, error) {
	ids, err := list(ctx, t, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, `SELECT r.id`+rotationGone+` ORDER BY r.id`, nanos(before))
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM token_rotations WHERE id IN (SELECT r.id`+rotationGone+`)`, nanos(before)); err != nil {
		return nil, wrap(err)
	}
	return ids, nil
}
