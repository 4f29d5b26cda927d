package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// testTokenLifecycleFields: a token's idle timeout, self-rotation,
// family and text hash round-trip, and the Family, TextHash and IdleAt
// filters select what they say.
func testTokenLifecycleFields(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	all := []gatehouse.Token{
		// Family root, never used: idle from issue (t0) plus an hour.
		token("root", func(k *gatehouse.Token) { k.IdleTimeout, k.TextHash = 3600, hash("text root") }),
		// Rotated into root's family; used at t0+2h, idle two hours later.
		token("child", func(k *gatehouse.Token) {
			k.Family, k.SelfRotate, k.IdleTimeout = "root", true, 7200
			k.LastUsedAt, k.LastUsedFrom = at(2*time.Hour), "192.0.2.1"
			k.TextHash = hash("text child")
		}),
		// Another family; no idle timeout, never idle.
		token("other", func(k *gatehouse.Token) { k.Family = "elsewhere" }),
	}
	createAll(t, s, all)
	for _, want := range all {
		got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, want.ID) })
		equal(t, "GetToken "+want.ID, got, want)
	}
	cases := []struct {
		name string
		f    gatehouse.TokenFilter
		want []string
	}{
		{"family root", gatehouse.TokenFilter{Family: "root"}, []string{"child", "root"}},
		{"family elsewhere", gatehouse.TokenFilter{Family: "elsewhere"}, []string{"other"}},
		{"family of a child's id", gatehouse.TokenFilter{Family: "child"}, []string{"child"}},
		{"text hash", gatehouse.TokenFilter{TextHash: hash("text child")}, []string{"child"}},
		{"unknown text hash", gatehouse.TokenFilter{TextHash: hash("nothing")}, []string{}},
		{"idle before any", gatehouse.TokenFilter{IdleAt: at(time.Hour - time.Nanosecond)}, []string{}},
		{"root idle at its timeout", gatehouse.TokenFilter{IdleAt: at(time.Hour)}, []string{"root"}},
		{"child counts from its last use", gatehouse.TokenFilter{IdleAt: at(4*time.Hour - time.Nanosecond)}, []string{"root"}},
		{"both idle", gatehouse.TokenFilter{IdleAt: at(4 * time.Hour)}, []string{"child", "root"}},
	}
	for _, tc := range cases {
		got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) { return tx.ListTokens(ctx, tc.f) })
		equal(t, tc.name, ids(got), tc.want)
	}
	gone := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.DeleteTokens(ctx, gatehouse.TokenFilter{Family: "root"})
	})
	equal(t, "DeleteTokens(family root)", ids(gone), []string{"child", "root"})
}

func rotation(id, family, successor string, keep time.Time) gatehouse.Rotation {
	return gatehouse.Rotation{ID: id, Hash: hash(id), Family: family, Account: "alice", Successor: successor,
		RotatedAt: at(time.Minute), GraceUntil: at(2 * time.Minute), KeepUntil: keep}
}

// testRotations: rotations round-trip, conflict on a taken id, list by
// id, and prune by KeepUntil or, without one, once their family has no
// token left.
func testRotations(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	rs := []gatehouse.Rotation{
		rotation("r1", "f1", "r2", at(10*time.Hour)), // kept until t0+10h
		rotation("r2", "f1", "live", time.Time{}),    // kept while f1 lives
		rotation("r3", "f3", "dead", time.Time{}),    // f3 has no token: pruned at once
	}
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateToken(ctx, token("live", func(k *gatehouse.Token) { k.Family = "f1" })); err != nil {
			return err
		}
		for _, r := range rs {
			if err := tx.AddRotation(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	var err error
	_ = s.Tx(ctx, func(tx gatehouse.Tx) error {
		err = tx.AddRotation(ctx, rotation("r1", "x", "y", time.Time{}))
		return err
	})
	wantCode(t, "AddRotation of a taken id", err, gatehouse.ECONFLICT)
	for _, want := range rs {
		got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Rotation, error) { return tx.GetRotation(ctx, want.ID) })
		equal(t, "GetRotation "+want.ID, got, want)
	}
	_ = s.View(ctx, func(tx gatehouse.Tx) error {
		_, err = tx.GetRotation(ctx, "nope")
		return nil
	})
	wantCode(t, "GetRotation of an unknown id", err, gatehouse.ENOTFOUND)
	listed := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Rotation, error) { return tx.ListRotations(ctx) })
	equal(t, "ListRotations", listed, rs)

	prune := func(before time.Time) []string {
		return read(t, s, func(tx gatehouse.Tx) ([]string, error) { return tx.PruneRotations(ctx, before) })
	}
	equal(t, "prune at t0+1h", prune(at(time.Hour)), []string{"r3"})
	equal(t, "prune at t0+10h", prune(at(10*time.Hour)), []string{"r1"})
	equal(t, "prune while the family lives", prune(at(20*time.Hour)), []string{})
	inTx(t, s, func(tx gatehouse.Tx) error {
		_, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{Family: "f1"})
		return err
	})
	equal(t, "prune once the family is gone", prune(at(20*time.Hour)), []string{"r2"})
	listed = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Rotation, error) { return tx.ListRotations(ctx) })
	equal(t, "ListRotations after pruning", len(listed), 0)
	for name, w := range map[string]func(tx gatehouse.Tx) error{
		"AddRotation": func(tx gatehouse.Tx) error { return tx.AddRotation(ctx, rotation("v", "f", "s", time.Time{})) },
		"PruneRotations": func(tx gatehouse.Tx) error {
			_, err := tx.PruneRotations(ctx, at(time.Hour))
			return err
		},
	} {
		var inside error
		_ = s.View(ctx, func(tx gatehouse.Tx) error { inside = w(tx); return inside })
		wantCode(t, name+" in a View", inside, gatehouse.EINTERNAL)
	}
}
