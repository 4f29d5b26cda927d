package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// SSO accounts keep their source, login and refresh times and their link
// to the identity provider (with the refresh token sealed by the service:
// to the store it is opaque bytes) through create, update and list; a local
// account has none of it.
func testSSOAccounts(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	sso := gatehouse.Account{
		Name:              "alice@example.com",
		Enabled:           true,
		Capabilities:      []gatehouse.Capability{gatehouse.CapLogin, gatehouse.CapAPIKey},
		Groups:            []string{"devs"},
		CreatedAt:         t0,
		Source:            gatehouse.SourceSSO,
		LastLoginAt:       at(time.Hour),
		GroupsRefreshedAt: at(time.Hour),
		SSO: gatehouse.SSOLink{
			Issuer:       "https://idp.example",
			Subject:      "248289761001",
			RefreshToken: []byte{0x01, 0xfe, 0x00, 0x7f, 'x'},
		},
	}
	local := account("bob")
	local.Source = gatehouse.SourceLocal
	inTx(t, s, func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(ctx, sso); err != nil {
			return err
		}
		return tx.CreateAccount(ctx, local)
	})
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) { return tx.GetAccount(ctx, sso.Name) })
	equal(t, "SSO account after create", noPassword(got), sso)

	changed := sso
	changed.Enabled = false
	changed.Groups = []string{}
	changed.GroupsRefreshedAt = at(2 * time.Hour)
	changed.SSO.RefreshToken = nil
	changed.SSO.Refused = true
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateAccount(ctx, changed) })
	list := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Account, error) { return tx.ListAccounts(ctx) })
	list[0] = noPassword(list[0])
	equal(t, "ListAccounts after an SSO update", list, []gatehouse.Account{changed, local})

	// Found by the provider's user, whatever its name.
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) {
		return tx.GetAccountBySSO(ctx, "https://idp.example", "248289761001")
	})
	equal(t, "GetAccountBySSO", noPassword(got), changed)
	for _, k := range [][2]string{{"https://idp.example", "248289761002"}, {"https://other.example", "248289761001"}, {"", ""}} {
		err := s.View(ctx, func(tx gatehouse.Tx) error {
			_, err := tx.GetAccountBySSO(ctx, k[0], k[1])
			return err
		})
		if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
			t.Errorf("GetAccountBySSO(%q, %q) = %v, want ENOTFOUND", k[0], k[1], err)
		}
	}
	// One account per user of a provider; the same subject at another
	// provider is another user.
	twin := sso
	twin.Name = "alice2@example.com"
	err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, twin) })
	if !gatehouse.IsCode(err, gatehouse.ECONFLICT) {
		t.Errorf("a second account for the same provider's user: %v, want ECONFLICT", err)
	}
	twin.SSO.Issuer = "https://other.example"
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, twin) })
	// A link that moves (an update) is found under its new subject only.
	moved := changed
	moved.SSO.Subject = "248289761003"
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.UpdateAccount(ctx, moved) })
	got = read(t, s, func(tx gatehouse.Tx) (gatehouse.Account, error) {
		return tx.GetAccountBySSO(ctx, "https://idp.example", "248289761003")
	})
	equal(t, "GetAccountBySSO after the link moved", noPassword(got), moved)
	err = s.View(ctx, func(tx gatehouse.Tx) error {
		_, err := tx.GetAccountBySSO(ctx, "https://idp.example", "248289761001")
		return err
	})
	if !gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
		t.Errorf("GetAccountBySSO of the old subject = %v, want ENOTFOUND", err)
	}
	// Local accounts (no subject) are many, and never found.
	other := account("carol")
	other.Source = gatehouse.SourceLocal
	inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateAccount(ctx, other) })
}

// noPassword reads an account without a password the same on every
// backend: no hash (nil) whether stored as NULL or empty.
func noPassword(a gatehouse.Account) gatehouse.Account {
	if len(a.PasswordHash) == 0 {
		a.PasswordHash = nil
	}
	return a
}
