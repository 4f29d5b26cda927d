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

// StartDeviceLogin starts an SSO login with the device authorization
// grant (RFC 8628): the answer says where the user goes and which code
// they enter there; PollDeviceLogin waits for them.
func (c *Client) StartDeviceLogin(ctx context.Context) (gatehouse.DeviceLogin, error) {
	var out gatehouse.DeviceLogin
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/session/device", body: struct{}{}, noAuth: true}, &out)
	return out, err
}

// PollDeviceLogin asks once whether the user of a device login has
// finished; the server waits a while before it answers. It returns the
// session token, or "" and the interval to poll again at while the login
// is pending.
func (c *Client) PollDeviceLogin(ctx context.Context, handle string) (token string, interval int, err error) {
	var out struct {
		Token    string `json:"token"`
		Status   string `json:"status"`
		Interval int    `json:"interval"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: "/api/v1/session/device/token", body: gatehouse.DevicePoll{Handle: handle}, noAuth: true}, &out)
	switch {
	case err != nil:
		return "", 0, err
	case out.Token != "":
		return out.Token, 0, nil
	case out.Status == "authorization_pending":
		return "", out.Interval, nil
	}
	return "", 0, gatehouse.Errorf(gatehouse.EINTERNAL, "the answer to a device login poll carried neither a token nor a pending status")
}
