package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
)

// VerifyAudit asks the server to recompute its audit trail's hash chain.
// anchor, when not empty, is a head exported earlier ("<id>:<hex hash>",
// the Anchor of an earlier verification) that the chain must still pass
// through. A chain that does not verify is not an error: the answer's OK
// is false and FirstBadID names the first event that does not fit.
func (c *Client) VerifyAudit(ctx context.Context, anchor string) (gatehouse.ChainVerification, error) {
	q := url.Values{}
	if anchor != "" {
		q.Set("anchor", anchor)
	}
	var out gatehouse.ChainVerification
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit/verify", query: q}, &out)
	return out, err
}
