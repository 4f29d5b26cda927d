package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// seed writes one of everything, for tests that check what a transaction
// did or did not change.
func seed(t *testing.T, s gatehouse.Store) {
	t.Helper()
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(
			tx.CreateAccount(ctx, account("alice")),
			tx.CreateToken(ctx, token("t1")),
			tx.CreateProject(ctx, project("web")),
			tx.CreateApplication(ctx, application("shop", "web")),
			tx.CreateOperation(ctx, operation("op-1", "shop", at(time.Minute), gatehouse.OpPending)),
			tx.PutRBAC(ctx, gatehouse.RBAC{PolicyCSV: "g, alice, role:admin\n", PolicyDefault: "role:readonly", MatchMode: "glob"}),
			tx.AppendEvents(ctx, []gatehouse.Event{event(1, "alice", "t1", "allow")}),
		)
	})
}

// snapshot reads everything seed and the rollback test may touch.
type snapshot struct {
	Accounts   []gatehouse.Account
	Tokens     []gatehouse.Token
	Projects   []gatehouse.Project
	Apps       []gatehouse.Application
	Operations []gatehouse.Operation
	RBAC       gatehouse.RBAC
	Events     []gatehouse.Event
	ChangeHead int64
	Changes    []gatehouse.Change
}

func snap(t *testing.T, s gatehouse.Store) snapshot {
	t.Helper()
	ctx := t.Context()
	sn := read(t, s, func(tx gatehouse.Tx) (snapshot, error) { return readAll(ctx, tx) })
	sn.ChangeHead = changeHead(t, s)
	sn.Changes = allChanges(t, s)
	return sn
}

// readAll reads, in tx, the part of a snapshot that a transaction reads.
func readAll(ctx context.Context, tx gatehouse.Tx) (snap snapshot, err error) {
	var errs [7]error
	snap.Accounts, errs[0] = tx.ListAccounts(ctx)
	snap.Tokens, errs[1] = tx.ListTokens(ctx, gatehouse.TokenFilter{})
	snap.Projects, errs[2] = tx.ListProjects(ctx)
	snap.Apps, errs[3] = tx.ListApplications(ctx, "")
	snap.Operations, errs[4] = tx.ListOperations(ctx, "shop", "")
	snap.RBAC, errs[5] = tx.GetRBAC(ctx)
	snap.Events, errs[6] = tx.ListEvents(ctx, gatehouse.EventFilter{})
	return snap, errors.Join(errs[:]...)
}

// testTxRollback: a transaction whose fn fails commits nothing, whichever
// writes it made, and Tx returns fn's error itself.
func testTxRollback(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(ctx context.Context, tx gatehouse.Tx) error
		want error // nil: any error that is fn's own
	}{
		{"fail/every kind of write then an error", func(ctx context.Context, tx gatehouse.Tx) error {
			a := account("alice")
			a.Enabled = false
			op := operation("op-1", "shop", at(time.Minute), gatehouse.OpFailed)
			// Arguments run in order: expiry change, then the deletes.
			err0 := tx.SetTokenExpiry(ctx, "t1", time.Time{})
			_, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{})
			_, err2 := tx.PruneEvents(ctx, at(time.Hour))
			if err := errors.Join(err0, err, err2,
				tx.CreateAccount(ctx, account("bob")),
				tx.UpdateAccount(ctx, a),
				tx.CreateToken(ctx, token("t2")),
				tx.CreateProject(ctx, project("api")),
				tx.DeleteProject(ctx, "web"),
				tx.CreateApplication(ctx, application("cart", "web")),
				tx.UpdateOperation(ctx, op),
				tx.CreateOperation(ctx, operation("op-2", "shop", at(time.Hour), gatehouse.OpPending)),
				tx.PutRBAC(ctx, gatehouse.RBAC{PolicyDefault: "role:admin"}),
				tx.AppendEvents(ctx, []gatehouse.Event{event(2, "bob", "", "allow")}),
				tx.RecordChanges(ctx, []gatehouse.Change{{Kind: gatehouse.ChangeAccount, Key: "bob"}, {Kind: gatehouse.ChangePolicy}}),
			); err != nil {
				return err
			}
			return boom
		}, boom},
		{"fail/delete application then an error", func(ctx context.Context, tx gatehouse.Tx) error {
			if err := tx.DeleteApplication(ctx, "shop"); err != nil {
				return err
			}
			return boom
		}, boom},
		{"fail/writes then a conflict", func(ctx context.Context, tx gatehouse.Tx) error {
			if err := tx.CreateAccount(ctx, account("bob")); err != nil {
				return err
			}
			if err := tx.DeleteAccount(ctx, "alice"); err != nil {
				return err
			}
			return tx.CreateToken(ctx, token("t1")) // taken: ECONFLICT
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			seed(t, s)
			before := snap(t, s)
			err := s.Tx(t.Context(), func(tx gatehouse.Tx) error { return tc.fn(t.Context(), tx) })
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Tx: got error %v, want fn's error %v", err, tc.want)
			case tc.want == nil:
				wantCode(t, "Tx", err, gatehouse.ECONFLICT)
			}
			equal(t, "store after a failed transaction", snap(t, s), before)
		})
	}
}

func testTxReadsOwnWrites(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(ctx, account("alice")); err != nil {
			return err
		}
		if err := tx.CreateToken(ctx, token("t1")); err != nil {
			return err
		}
		a, err := tx.GetAccount(ctx, "alice")
		if err != nil {
			return fmt.Errorf("GetAccount in the creating transaction: %w", err)
		}
		equal(t, "account read in its transaction", a, account("alice"))
		gone, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{Account: "alice"})
		if err != nil {
			return err
		}
		equal(t, "tokens deleted in their creating transaction", ids(gone), []string{"t1"})
		return nil
	})
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) { return tx.ListTokens(ctx, gatehouse.TokenFilter{}) })
	equal(t, "tokens after commit", ids(got), []string{})
}

// testErrorCodes: every call that names something missing is ENOTFOUND,
// every create of a taken key is ECONFLICT, and nothing else fails.
func testErrorCodes(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	seed(t, s)
	tests := []struct {
		name string
		fn   func(ctx context.Context, tx gatehouse.Tx) error
		code string
	}{
		{"fail/create account taken", func(ctx context.Context, tx gatehouse.Tx) error { return tx.CreateAccount(ctx, account("alice")) }, gatehouse.ECONFLICT},
		{"fail/get account unknown", func(ctx context.Context, tx gatehouse.Tx) error { _, err := tx.GetAccount(ctx, "bob"); return err }, gatehouse.ENOTFOUND},
		{"fail/update account unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.UpdateAccount(ctx, account("bob")) }, gatehouse.ENOTFOUND},
		{"fail/delete account unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteAccount(ctx, "bob") }, gatehouse.ENOTFOUND},
		{"fail/create token taken", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateToken(ctx, token("t1", func(k *gatehouse.Token) { k.Account = "bob" }))
		}, gatehouse.ECONFLICT},
		{"fail/get token unknown", func(ctx context.Context, tx gatehouse.Tx) error { _, err := tx.GetToken(ctx, "t2"); return err }, gatehouse.ENOTFOUND},
		{"fail/set expiry unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.SetTokenExpiry(ctx, "t2", t0) }, gatehouse.ENOTFOUND},
		{"ok/delete tokens matching none", func(ctx context.Context, tx gatehouse.Tx) error {
			gone, err := tx.DeleteTokens(ctx, gatehouse.TokenFilter{Account: "bob"})
			if err == nil && (gone == nil || len(gone) != 0) {
				return fmt.Errorf("got %#v, want []", gone)
			}
			return err
		}, ""},
		{"fail/create project taken", func(ctx context.Context, tx gatehouse.Tx) error { return tx.CreateProject(ctx, project("web")) }, gatehouse.ECONFLICT},
		{"fail/get project unknown", func(ctx context.Context, tx gatehouse.Tx) error { _, err := tx.GetProject(ctx, "api"); return err }, gatehouse.ENOTFOUND},
		{"fail/update project unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.UpdateProject(ctx, project("api")) }, gatehouse.ENOTFOUND},
		{"fail/delete project unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteProject(ctx, "api") }, gatehouse.ENOTFOUND},
		{"fail/create application taken", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateApplication(ctx, application("shop", "web"))
		}, gatehouse.ECONFLICT},
		{"fail/get application unknown", func(ctx context.Context, tx gatehouse.Tx) error { _, err := tx.GetApplication(ctx, "cart"); return err }, gatehouse.ENOTFOUND},
		{"fail/update application unknown", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.UpdateApplication(ctx, application("cart", "web"))
		}, gatehouse.ENOTFOUND},
		{"fail/delete application unknown", func(ctx context.Context, tx gatehouse.Tx) error { return tx.DeleteApplication(ctx, "cart") }, gatehouse.ENOTFOUND},
		{"fail/create operation taken", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateOperation(ctx, operation("op-1", "shop", t0, gatehouse.OpPending))
		}, gatehouse.ECONFLICT},
		{"fail/create operation of unknown application", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.CreateOperation(ctx, operation("op-2", "cart", t0, gatehouse.OpPending))
		}, gatehouse.ENOTFOUND},
		{"fail/get operation unknown", func(ctx context.Context, tx gatehouse.Tx) error {
			_, err := tx.GetOperation(ctx, "shop", "op-2")
			return err
		}, gatehouse.ENOTFOUND},
		{"fail/get operation of another application", func(ctx context.Context, tx gatehouse.Tx) error {
			_, err := tx.GetOperation(ctx, "cart", "op-1")
			return err
		}, gatehouse.ENOTFOUND},
		{"fail/update operation unknown", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.UpdateOperation(ctx, operation("op-2", "shop", t0, gatehouse.OpRunning))
		}, gatehouse.ENOTFOUND},
		{"fail/update operation of another application", func(ctx context.Context, tx gatehouse.Tx) error {
			return tx.UpdateOperation(ctx, operation("op-1", "cart", t0, gatehouse.OpRunning))
		}, gatehouse.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Tx(t.Context(), func(tx gatehouse.Tx) error { return tc.fn(t.Context(), tx) })
			wantCode(t, tc.name, err, tc.code)
			for _, backend := range []string{"sqlite", "postgres", "pgx", "SQLSTATE"} {
				if err != nil && strings.Contains(gatehouse.ErrorMessage(err), backend) {
					t.Errorf("client message %q leaks the backend", gatehouse.ErrorMessage(err))
				}
			}
		})
	}
	// None of the failures changed anything.
	after := snap(t, s)
	fresh := open(t)
	seed(t, fresh)
	equal(t, "store after failed calls", after, snap(t, fresh))
}

// testTimes: every stored time comes back as the same instant, to the
// nanosecond, in UTC, whatever zone it was written in; and filters compare
// instants, not wall clocks.
func testTimes(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := func(d time.Duration) time.Time { return at(d + time.Nanosecond).In(zone) }

	a := account("alice")
	a.CreatedAt = local(0)
	k := token("t1", func(k *gatehouse.Token) {
		k.IssuedAt, k.ExpiresAt, k.LastUsedAt = local(0), local(time.Hour), local(time.Minute)
	})
	p := project("web")
	p.CreatedAt = local(0)
	app := application("shop", "web")
	app.CreatedAt, app.Status.ReportedAt = local(0), local(2*time.Minute)
	op := operation("op-1", "shop", local(0), gatehouse.OpPending)
	op.UpdatedAt = local(3 * time.Minute)
	ev := event(0, "alice", "t1", "allow")
	ev.Time = local(4 * time.Minute)
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(tx.CreateAccount(ctx, a), tx.CreateToken(ctx, k), tx.CreateProject(ctx, p),
			tx.CreateApplication(ctx, app), tx.CreateOperation(ctx, op), tx.AppendEvents(ctx, []gatehouse.Event{ev}))
	})
	if err := s.TouchTokens(ctx, []gatehouse.TokenUse{{ID: "t1", At: local(5 * time.Minute), From: "192.0.2.1"}}); err != nil {
		t.Fatalf("TouchTokens: %v", err)
	}

	var got struct {
		a   gatehouse.Account
		k   gatehouse.Token
		p   gatehouse.Project
		app gatehouse.Application
		op  gatehouse.Operation
		ev  []gatehouse.Event
	}
	inTx(t, s, func(tx gatehouse.Tx) error {
		var errs [6]error
		got.a, errs[0] = tx.GetAccount(ctx, "alice")
		got.k, errs[1] = tx.GetToken(ctx, "t1")
		got.p, errs[2] = tx.GetProject(ctx, "web")
		got.app, errs[3] = tx.GetApplication(ctx, "shop")
		got.op, errs[4] = tx.GetOperation(ctx, "shop", "op-1")
		got.ev, errs[5] = tx.ListEvents(ctx, gatehouse.EventFilter{})
		return errors.Join(errs[:]...)
	})
	if len(got.ev) != 1 {
		t.Fatalf("ListEvents: got %d events, want 1", len(got.ev))
	}
	tests := []struct {
		name      string
		got, want time.Time
	}{
		{"account createdAt", got.a.CreatedAt, a.CreatedAt},
		{"token issuedAt", got.k.IssuedAt, k.IssuedAt},
		{"token expiresAt", got.k.ExpiresAt, k.ExpiresAt},
		{"token lastUsedAt", got.k.LastUsedAt, local(5 * time.Minute)},
		{"project createdAt", got.p.CreatedAt, p.CreatedAt},
		{"application createdAt", got.app.CreatedAt, app.CreatedAt},
		{"application status reportedAt", got.app.Status.ReportedAt, app.Status.ReportedAt},
		{"operation createdAt", got.op.CreatedAt, op.CreatedAt},
		{"operation updatedAt", got.op.UpdatedAt, op.UpdatedAt},
		{"event time", got.ev[0].Time, ev.Time},
	}
	for _, tc := range tests {
		if !tc.got.Equal(tc.want) || tc.got.Location() != time.UTC {
			t.Errorf("%s: got %v, want %v in UTC", tc.name, tc.got, tc.want.UTC())
		}
	}

	// Filters given in another zone compare instants.
	filters := []struct {
		name string
		f    gatehouse.TokenFilter
		want []string
	}{
		{"ok/issued before, a nanosecond after", gatehouse.TokenFilter{IssuedBefore: local(time.Nanosecond)}, []string{"t1"}},
		{"ok/issued before, same instant", gatehouse.TokenFilter{IssuedBefore: local(0)}, []string{}},
		{"ok/expired before, same instant", gatehouse.TokenFilter{ExpiredBefore: local(time.Hour)}, []string{"t1"}},
		{"ok/expired before, a nanosecond early", gatehouse.TokenFilter{ExpiredBefore: local(time.Hour - time.Nanosecond)}, []string{}},
	}
	for _, tc := range filters {
		got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) { return tx.ListTokens(ctx, tc.f) })
		equal(t, tc.name, ids(got), tc.want)
	}
}

// testEmptySlices: list fields stored nil or empty come back as non-nil
// empty slices, so the API's JSON shows [] rather than null.
func testEmptySlices(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	svc := gatehouse.Account{Name: "ci", Enabled: true, CreatedAt: t0} // nil capabilities, groups, hash
	empty := gatehouse.Account{Name: "empty", Capabilities: []gatehouse.Capability{}, Groups: []string{}, CreatedAt: t0}
	k := token("t1", func(k *gatehouse.Token) { k.Scopes = nil })
	p := gatehouse.Project{Name: "bare", CreatedAt: t0}
	pr := gatehouse.Project{Name: "roles", CreatedAt: t0, Roles: []gatehouse.ProjectRole{{Name: "viewer"}}}
	inTx(t, s, func(tx gatehouse.Tx) error {
		return errors.Join(tx.CreateAccount(ctx, svc), tx.CreateAccount(ctx, empty), tx.CreateToken(ctx, k),
			tx.CreateProject(ctx, p), tx.CreateProject(ctx, pr))
	})

	var (
		accounts []gatehouse.Account
		tokens   []gatehouse.Token
		projects []gatehouse.Project
	)
	inTx(t, s, func(tx gatehouse.Tx) error {
		var errs [7]error
		var a1, a2 gatehouse.Account
		var t1 gatehouse.Token
		var p1, p2 gatehouse.Project
		a1, errs[0] = tx.GetAccount(ctx, "ci")
		a2, errs[1] = tx.GetAccount(ctx, "empty")
		t1, errs[2] = tx.GetToken(ctx, "t1")
		p1, errs[3] = tx.GetProject(ctx, "bare")
		p2, errs[4] = tx.GetProject(ctx, "roles")
		la, errA := tx.ListAccounts(ctx)
		lt, errT := tx.ListTokens(ctx, gatehouse.TokenFilter{})
		lp, errP := tx.ListProjects(ctx)
		errs[5], errs[6] = errors.Join(errA, errT), errP
		accounts = append([]gatehouse.Account{a1, a2}, la...)
		tokens = append([]gatehouse.Token{t1}, lt...)
		projects = append([]gatehouse.Project{p1, p2}, lp...)
		return errors.Join(errs[:]...)
	})
	if len(accounts[0].PasswordHash) != 0 {
		t.Errorf("service account password hash: got %q, want none", accounts[0].PasswordHash)
	}
	var got []string
	for _, a := range accounts {
		got = append(got, jsonOf(t, struct {
			C []gatehouse.Capability `json:"capabilities"`
			G []string               `json:"groups"`
		}{a.Capabilities, a.Groups}))
	}
	for _, k := range tokens {
		got = append(got, jsonOf(t, struct {
			S []gatehouse.Scope `json:"scopes"`
		}{k.Scopes}))
	}
	for _, p := range projects {
		got = append(got, jsonOf(t, p.Roles))
	}
	want := []string{
		`{"capabilities":[],"groups":[]}`, `{"capabilities":[],"groups":[]}`, // get
		`{"capabilities":[],"groups":[]}`, `{"capabilities":[],"groups":[]}`, // list
		`{"scopes":[]}`, `{"scopes":[]}`,
		`[]`, `[{"name":"viewer","description":"","policies":[],"groups":[]}]`, // get
		`[]`, `[{"name":"viewer","description":"","policies":[],"groups":[]}]`, // list
	}
	equal(t, "list fields as JSON", got, want)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return string(b)
}

// testConcurrentWriters: parallel write transactions all succeed (the
// backend serializes or retries them) and every row lands. Run with -race.
func testConcurrentWriters(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	// Each worker sends two results per round; the reader one.
	errs := make(chan error, 2*workers*perWorker+1)
	for w := range workers {
		wg.Go(func() {
			user := fmt.Sprintf("user%d", w)
			for i := range perWorker {
				id := fmt.Sprintf("w%d-%02d", w, i)
				errs <- s.Tx(ctx, func(tx gatehouse.Tx) error {
					// Read, then write: the pattern that deadlocks or fails with
					// "database is locked" when write locks are taken late.
					if _, err := tx.ListTokens(ctx, gatehouse.TokenFilter{Account: user}); err != nil {
						return err
					}
					if err := tx.CreateToken(ctx, token(id, func(k *gatehouse.Token) { k.Account = user })); err != nil {
						return err
					}
					return tx.AppendEvents(ctx, []gatehouse.Event{event(i, user, id, "allow")})
				})
				// The request-path batcher writes beside the transactions.
				errs <- s.AppendEvents(ctx, []gatehouse.Event{event(i, user, "", "deny")})
			}
		})
	}
	// A reader streams alongside the writers.
	wg.Go(func() { errs <- s.ForEachToken(ctx, func(gatehouse.Token) error { return nil }) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	for w := range workers {
		user := fmt.Sprintf("user%d", w)
		tokens := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
			return tx.ListTokens(ctx, gatehouse.TokenFilter{Account: user})
		})
		if len(tokens) != perWorker {
			t.Errorf("tokens of worker %d: got %d, want %d", w, len(tokens), perWorker)
		}
		for _, decision := range []string{"allow", "deny"} {
			events := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Event, error) {
				return tx.ListEvents(ctx, gatehouse.EventFilter{Actor: user, Decision: decision})
			})
			if len(events) != perWorker {
				t.Errorf("%s events of worker %d: got %d, want %d", decision, w, len(events), perWorker)
			}
		}
	}
	// Ids stay unique and ordered under concurrency.
	all := allEvents(t, s)
	if len(all) != 2*workers*perWorker {
		t.Fatalf("events: got %d, want %d", len(all), 2*workers*perWorker)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("event ids not strictly decreasing at %d: %d then %d", i, all[i-1].ID, all[i].ID)
		}
	}
}
