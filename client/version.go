package client

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Version asks the server what it is (GET /api/version). It sends no
// credential: the answer is public, and a stale token must not stand in
// the way of learning the server's version.
func (c *Client) Version(ctx context.Context) (gatehouse.VersionInfo, error) {
	var out gatehouse.VersionInfo
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/version", noAuth: true}, &out)
	return out, err
}
