package storetest

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

func testAccounts(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	alice := account("alice")
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, alice) })

	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) { return tx.GetAccount(ctx, "alice") })
	equal(t, "GetAccount after create", got, alice)

	changed := alice
	changed.Enabled = false
	changed.Capabilities = []gatehouse.Capability{gatehouse.CapAPIKey}
	changed.Groups = []string{"qa"}
	changed.PasswordHash = []byte("$2a$10$another-hash")
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateAccount(ctx, changed) })
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) { return tx.GetAccount(ctx, "alice") })
	equal(t, "GetAccount after update", got, changed)

	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteAccount(ctx, "alice") })
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		_, err := tx.GetAccount(ctx, "alice")
		return err
	})
	wantCode(t, "GetAccount after delete", err, gatehouse.ENOTFOUND)
	// The name is free again.
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, alice) })
}

func testAccountList(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Account, error) { return tx.ListAccounts(ctx) })
	if got == nil || len(got) != 0 {
		t.Errorf("ListAccounts on an empty store: got %#v, want []", got)
	}

	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, n := range []string{"carol", "admin", "bob", "alice"} {
			if err := tx.CreateAccount(ctx, account(n)); err != nil {
				return err
			}
		}
		return nil
	})
	got = read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Account, error) { return tx.ListAccounts(ctx) })
	want := []gatehouse.Account{account("admin"), account("alice"), account("bob"), account("carol")}
	equal(t, "ListAccounts", got, want)
}

// Storage is dumb: deleting an account leaves its tokens, which the service
// deletes (and audits) itself in the same transaction.
func testAccountDeleteKeepsTokens(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(ctx, account("alice")); err != nil {
			return err
		}
		return tx.CreateToken(ctx, token("t1"))
	})
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.DeleteAccount(ctx, "alice") })
	got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.ListTokens(ctx, gatehouse.TokenFilter{Account: "alice"})
	})
	equal(t, "tokens of a deleted account", ids(got), []string{"t1"})
}
