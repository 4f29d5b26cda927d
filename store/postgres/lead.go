package postgres

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/gatehouse/gatehouse"
)

var _ gatehouse.Locker = (*Store)(nil)

// TryLock takes a session-level advisory lock named name on a connection
// it holds from the pool until release. Another server's TryLock of the
// same name meanwhile answers ok false; if the connection dies, PostgreSQL
// drops the lock with it.
func (s *Store) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, wrap(err)
	}
	key := lockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, wrap(err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The lock dies with the connection: do not return it to
			// the pool holding a lock.
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, true, nil
}

// lockKey maps a lock name to an advisory lock key. The migrations' lock
// uses its own constant; names here hash into the rest of the key space.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("gatehouse job lock: " + name))
	return int64(h.Sum64())
}
