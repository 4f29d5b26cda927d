package postgres

import (
	"context"

	"github.com/gatehouse/gatehouse"
)

// encodeSSO is the stored form of an account's SSO link: the empty string for none (a
// local account), else JSON. The refresh token in it is already sealed by
// the service; the store never sees it in the clear.
func encodeSSO(e *encoder, l gatehouse.SSOLink) string {
	if l.Issuer == "" && l.Subject == "" && l.RefreshToken == nil && !l.Refused {
		return ""
	}
	return e.json(l)
}

// decodeSSO reads what encodeSSO wrote.
func decodeSSO(s string, l *gatehouse.SSOLink) error {
	*l = gatehouse.SSOLink{}
	return fromJSON(s, l)
}

// GetAccountBySSO finds the account linked to a user of an identity
// provider (the index accounts_sso_user).
func (t *tx) GetAccountBySSO(ctx context.Context, issuer, subject string) (gatehouse.Account, error) {
	if subject == "" {
		return gatehouse.Account{}, gatehouse.Errorf(gatehouse.ENOTFOUND, "account not found")
	}
	return get(ctx, t, "account", scanAccount, `SELECT `+accountCols+` FROM accounts
		WHERE sso_issuer = $1 AND sso_subject = $2 AND sso_subject <> ''`, issuer, subject)
}
