package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Login exchanges a username and password for a session token. It sends no
// credential of its own, so a stale token in the client cannot get in the
// way of logging in again.
func (c *Client) Login(ctx context.Context, username, password string) (string, error) {
	in := gatehouse.LoginRequest{Username: username, Password: password}
	var out struct {
		Token string `json:"token"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/session", body: in, noAuth: true}, &out)
	if err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", gatehouse.Errorf(gatehouse.EINTERNAL, "login answer carried no token")
	}
	return out.Token, nil
}

// Logout revokes the caller's session token on the server.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/session"}, nil)
}

// UserInfo describes the caller. Without a credential it answers
// LoggedIn false; with a refused one it fails with EUNAUTHORIZED.
func (c *Client) UserInfo(ctx context.Context) (gatehouse.UserInfo, error) {
	var out gatehouse.UserInfo
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/session/userinfo"}, &out)
	return out, err
}
