package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ListAccounts returns the accounts the caller may get.
func (c *Client) ListAccounts(ctx context.Context) ([]gatehouse.Account, error) {
	var out gatehouse.List[gatehouse.Account]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/account"}, &out)
	return out.Items, err
}

// GetAccount returns one account with its tokens.
func (c *Client) GetAccount(ctx context.Context, name string) (gatehouse.Account, error) {
	var out gatehouse.Account
	p, err := pathf("/api/v1/account/%s", "account name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out, err
}

// CreateAccount creates a local user or service account.
func (c *Client) CreateAccount(ctx context.Context, in gatehouse.AccountCreate) (gatehouse.Account, error) {
	var out gatehouse.Account
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/account", body: in}, &out)
	return out, err
}

// UpdateAccount changes an account's enabled flag, capabilities or groups;
// nil fields of in are left as they are.
func (c *Client) UpdateAccount(ctx context.Context, name string, in gatehouse.AccountPatch) (gatehouse.Account, error) {
	var out gatehouse.Account
	p, err := pathf("/api/v1/account/%s", "account name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPatch, path: p, body: in}, &out)
	return out, err
}

// DeleteAccount deletes an account; its tokens die with it.
func (c *Client) DeleteAccount(ctx context.Context, name string) error {
	p, err := pathf("/api/v1/account/%s", "account name", name)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// UpdatePassword changes an account's password. An empty Name means the
// caller's own account; CurrentPassword is always the caller's.
func (c *Client) UpdatePassword(ctx context.Context, in gatehouse.PasswordChange) error {
	return c.do(ctx, request{method: http.MethodPut, path: "/api/v1/account/password", body: in}, nil)
}

// CanI reports whether the caller's token may perform action on object of
// resource. The object may contain slashes (<project>/<app>).
func (c *Client) CanI(ctx context.Context, resource, action, object string) (bool, error) {
	p, err := pathf("/api/v1/account/can-i/%s/%s", "resource", resource, "action", action)
	if err != nil {
		return false, err
	}
	parts := strings.Split(object, "/")
	for i, part := range parts {
		if parts[i], err = segment("object", part); err != nil {
			return false, gatehouse.Errorf(gatehouse.EINVALID, "invalid object %q", object)
		}
	}
	var out gatehouse.CanI
	err = c.do(ctx, request{method: http.MethodGet, path: p + "/" + strings.Join(parts, "/")}, &out)
	if err != nil {
		return false, err
	}
	switch out.Value {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, gatehouse.Errorf(gatehouse.EINTERNAL, "can-i answered %q, want yes or no", out.Value)
}

// CreateToken mints an API token for account. The answer is the only time
// the secret is returned.
func (c *Client) CreateToken(ctx context.Context, account string, in gatehouse.TokenRequest) (gatehouse.NewToken, error) {
	var out gatehouse.NewToken
	p, err := pathf("/api/v1/account/%s/token", "account name", account)
	if err != nil {
		return out, err
	}
	if err := checkSeconds("expiresIn", in.ExpiresIn); err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, body: in}, &out)
	return out, err
}

// ListTokens returns an account's tokens, newest first.
func (c *Client) ListTokens(ctx context.Context, account string) ([]gatehouse.Token, error) {
	var out gatehouse.List[gatehouse.Token]
	p, err := pathf("/api/v1/account/%s/token", "account name", account)
	if err != nil {
		return nil, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out.Items, err
}

// DeleteToken revokes one of an account's tokens.
func (c *Client) DeleteToken(ctx context.Context, account, id string) error {
	p, err := pathf("/api/v1/account/%s/token/%s", "account name", account, "token id", id)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// RotateToken mints a replacement for token id and revokes the old one now,
// or after in.GraceSeconds.
func (c *Client) RotateToken(ctx context.Context, account, id string, in gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	p, err := pathf("/api/v1/account/%s/token/%s/rotate", "account name", account, "token id", id)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return c.rotate(ctx, p, in)
}

// SelfRotate rotates the token the client authenticates with, which must
// have been minted with selfRotate; account is its owner. The new secret
// is returned once; this Client goes on sending the old token (make a
// new one WithToken to use the new).
func (c *Client) SelfRotate(ctx context.Context, account string, in gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	p, err := pathf("/api/v1/account/%s/token/self/rotate", "account name", account)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return c.rotate(ctx, p, in)
}

// rotate sends a rotation to path.
func (c *Client) rotate(ctx context.Context, path string, in gatehouse.RotateRequest) (gatehouse.NewToken, error) {
	var out gatehouse.NewToken
	if err := checkSeconds("expiresIn", in.ExpiresIn); err != nil {
		return out, err
	}
	if err := checkSeconds("graceSeconds", &in.GraceSeconds); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: path, body: in}, &out)
	return out, err
}

// RevokeAllTokens revokes every token of account, or only those issued
// before issuedBefore when it is not zero, and returns how many.
func (c *Client) RevokeAllTokens(ctx context.Context, account string, issuedBefore time.Time) (int, error) {
	p, err := pathf("/api/v1/account/%s/token", "account name", account)
	if err != nil {
		return 0, err
	}
	var q url.Values
	if !issuedBefore.IsZero() {
		q = url.Values{"issuedBefore": {issuedBefore.UTC().Format(time.RFC3339Nano)}}
	}
	var out struct {
		Revoked int `json:"revoked"`
	}
	err = c.do(ctx, request{method: http.MethodDelete, path: p, query: q}, &out)
	return out.Revoked, err
}
