package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// testConcurrentReadModifyWrite: transactions that read a row and write it
// back changed, all at once, lose no update. SQLite runs them one at a
// time; PostgreSQL lets them overlap, fails all but one with a
// serialization failure and retries those, which then read the winner's
// write.
func testConcurrentReadModifyWrite(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, account("alice")) })
	const workers, rounds = 6, 4
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				group := fmt.Sprintf("g%d-%d", w, r)
				errs <- s.Tx(ctx, func(tx gatehouse.Tx) error {
					a, err := tx.GetAccount(ctx, "alice")
					if err != nil {
						return err
					}
					a.Groups = append(a.Groups, group)
					return tx.UpdateAccount(ctx, a)
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("read-modify-write: %v", err)
		}
	}
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) { return tx.GetAccount(ctx, "alice") })
	want := slices.Clone(account("alice").Groups)
	for w := range workers {
		for r := range rounds {
			want = append(want, fmt.Sprintf("g%d-%d", w, r))
		}
	}
	slices.Sort(want)
	gotGroups := slices.Clone(got.Groups)
	slices.Sort(gotGroups)
	equal(t, "groups after concurrent appends (sorted)", gotGroups, want)
}

// testTxUsableAfterContractErrors: ENOTFOUND and ECONFLICT are answers, not
// failures of the transaction. After them the same transaction reads and
// writes on and commits, as on SQLite, where a failed statement undoes only
// itself. (A PostgreSQL statement that fails aborts the whole transaction,
// so a backend must not produce these codes by failing a statement.)
func testTxUsableAfterContractErrors(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seed(t, s)
	inTx(t, s, func(tx gatehouse.Tx) error {
		_, errGet := tx.GetAccount(ctx, "bob")
		_, errGetOp := tx.GetOperation(ctx, "shop", "op-9")
		_, errGetToken := tx.GetToken(ctx, "t9")
		answers := []struct {
			name string
			err  error
			code string
		}{
			{"create account taken", tx.CreateAccount(ctx, account("alice")), gatehouse.ECONFLICT},
			{"create token taken", tx.CreateToken(ctx, token("t1")), gatehouse.ECONFLICT},
			{"create project taken", tx.CreateProject(ctx, project("web")), gatehouse.ECONFLICT},
			{"create application taken", tx.CreateApplication(ctx, application("shop", "web")), gatehouse.ECONFLICT},
			{"create operation taken", tx.CreateOperation(ctx, operation("op-1", "shop", t0, gatehouse.OpPending)), gatehouse.ECONFLICT},
			{"create operation of unknown application", tx.CreateOperation(ctx, operation("op-2", "cart", t0, gatehouse.OpPending)), gatehouse.ENOTFOUND},
			{"get account unknown", errGet, gatehouse.ENOTFOUND},
			{"get operation unknown", errGetOp, gatehouse.ENOTFOUND},
			{"get token unknown", errGetToken, gatehouse.ENOTFOUND},
			{"update account unknown", tx.UpdateAccount(ctx, account("bob")), gatehouse.ENOTFOUND},
			{"delete project unknown", tx.DeleteProject(ctx, "api"), gatehouse.ENOTFOUND},
		}
		for _, a := range answers {
			wantCode(t, a.name, a.err, a.code)
		}
		// The transaction goes on.
		return errors.Join(
			tx.CreateAccount(ctx, account("bob")),
			tx.CreateToken(ctx, token("t2", func(k *gatehouse.Token) { k.Account = "bob" })),
			tx.CreateOperation(ctx, operation("op-2", "shop", at(time.Hour), gatehouse.OpPending)),
		)
	})
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.ListTokens(ctx, gatehouse.TokenFilter{Account: "bob"})
	})
	equal(t, "tokens committed after the answers", ids(got), []string{"t2"})
	bob := read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) { return tx.GetAccount(ctx, "bob") })
	equal(t, "account committed after the answers", bob, account("bob"))
}

// testTimesClamp: the stored form of a time is int64 Unix nanoseconds on
// every backend, so instants before 1677-09-21 or after 2262-04-11 come
// back clamped to the nearest one it holds, never as an error or as the
// zero time ("never expires").
func testTimesClamp(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	early := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // not the zero time
	late := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	inTx(t, s, func(tx gatehouse.Tx) error {
		return tx.CreateToken(ctx, token("t1", func(k *gatehouse.Token) { k.IssuedAt, k.ExpiresAt = early, late }))
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, "t1") })
	if want := time.Unix(0, math.MinInt64).UTC(); !got.IssuedAt.Equal(want) {
		t.Errorf("issuedAt year 1: got %v, want %v", got.IssuedAt, want)
	}
	if want := time.Unix(0, math.MaxInt64).UTC(); !got.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt year 9999: got %v, want %v", got.ExpiresAt, want)
	}
	expired := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.ListTokens(ctx, gatehouse.TokenFilter{ExpiredBefore: at(100 * 365 * 24 * time.Hour)})
	})
	equal(t, "a token expiring in 9999 is not expired in 2125", ids(expired), []string{})
}

// testTextNotUTF8: audit fields come from requests (path, user agent, the
// username of a failed login), so they may hold NUL bytes or invalid UTF-8.
// Writing them never fails (a failed batch would lose every event in it),
// the event can be found by its actor as written, and each field reads back
// either as written (SQLite keeps any bytes) or with each NUL and each run
// of invalid bytes as U+FFFD (PostgreSQL text holds only valid UTF-8
// without NUL).
func testTextNotUTF8(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	ev := event(1, "mallory\xc3", "", "deny")
	ev.Type, ev.Path, ev.UserAgent, ev.Detail = gatehouse.EventLoginFailed, "/api/v1/a\x00b", "curl/8\xff\xfe", "user \x00"
	if err := s.AppendEvents(ctx, []gatehouse.Event{ev}); err != nil {
		t.Fatalf("AppendEvents with NUL and invalid UTF-8: %v", err)
	}
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, []gatehouse.Event{ev}) })
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) {
		return tx.ListEvents(ctx, gatehouse.EventFilter{Actor: ev.Actor})
	})
	if len(got) != 2 {
		t.Fatalf("events by actor %q: got %d, want 2", ev.Actor, len(got))
	}
	for _, e := range got {
		for _, f := range []struct{ name, got, wrote string }{
			{"actor", e.Actor, ev.Actor}, {"path", e.Path, ev.Path},
			{"user agent", e.UserAgent, ev.UserAgent}, {"detail", e.Detail, ev.Detail},
		} {
			replaced := strings.ReplaceAll(strings.ToValidUTF8(f.wrote, "\uFFFD"), "\x00", "\uFFFD")
			if f.got != f.wrote && f.got != replaced {
				t.Errorf("%s: got %q, want %q or %q", f.name, f.got, f.wrote, replaced)
			}
		}
	}
}
