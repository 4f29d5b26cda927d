package service

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/store/sqlite"
)

// TestWorld is a Service on a fresh SQLite store with its admin account
// logged in, for this package's tests, inside it and out.
type TestWorld struct {
	Svc   *Service
	Store *sqlite.Store // the store under whatever wraps it
	t     testing.TB
	admin string // the admin's session token
}

// TestAdminPassword is the admin password of every TestWorld.
const TestAdminPassword = "admin-password"

// NewTestWorld opens a store in a temporary directory, hands it to
// options (which may wrap it as Options.Store; nil keeps it bare), starts
// a Service with bcrypt cost 10 unless options set one, bootstraps the
// admin account and logs it in. options may be nil.
func NewTestWorld(t testing.TB, options func(st *sqlite.Store) Options) *TestWorld {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var o Options
	if options != nil {
		o = options(st)
	}
	if o.Store == nil {
		o.Store = st
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = 10
	}
	svc, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, TestAdminPassword); err != nil {
		t.Fatal(err)
	}
	nt, err := svc.Login(ctx, "admin", TestAdminPassword, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return &TestWorld{Svc: svc, Store: st, t: t, admin: nt.Token}
}

// Admin authenticates the admin's session afresh: a Principal belongs to
// one request, so each call gets its own.
func (w *TestWorld) Admin() *Principal {
	w.t.Helper()
	p, err := w.Svc.Authenticate(context.Background(), w.admin)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}
