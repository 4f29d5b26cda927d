package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// ListTrustPolicies returns every trust policy.
func (c *Client) ListTrustPolicies(ctx context.Context) ([]gatehouse.TrustPolicy, error) {
	var out gatehouse.List[gatehouse.TrustPolicy]
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/trust-policies"}, &out)
	return out.Items, err
}

// GetTrustPolicy returns one trust policy.
func (c *Client) GetTrustPolicy(ctx context.Context, name string) (gatehouse.TrustPolicy, error) {
	var out gatehouse.TrustPolicy
	p, err := pathf("/api/v1/trust-policies/%s", "trust policy name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: p}, &out)
	return out, err
}

// CreateTrustPolicy stores a new trust policy.
func (c *Client) CreateTrustPolicy(ctx context.Context, tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	var out gatehouse.TrustPolicy
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/trust-policies", body: tp}, &out)
	return out, err
}

// UpdateTrustPolicy replaces a trust policy; a change revokes the tokens
// issued through it.
func (c *Client) UpdateTrustPolicy(ctx context.Context, name string, tp gatehouse.TrustPolicy) (gatehouse.TrustPolicy, error) {
	var out gatehouse.TrustPolicy
	p, err := pathf("/api/v1/trust-policies/%s", "trust policy name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPut, path: p, body: tp}, &out)
	return out, err
}

// DeleteTrustPolicy deletes a trust policy and revokes its tokens.
func (c *Client) DeleteTrustPolicy(ctx context.Context, name string) error {
	p, err := pathf("/api/v1/trust-policies/%s", "trust policy name", name)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p}, nil)
}

// TestTrustPolicy asks whether an ID token would be accepted by a policy,
// without exchanging it.
func (c *Client) TestTrustPolicy(ctx context.Context, name, idToken string) (gatehouse.TrustTestResult, error) {
	var out gatehouse.TrustTestResult
	p, err := pathf("/api/v1/trust-policies/%s/test", "trust policy name", name)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, body: gatehouse.TrustTest{Token: idToken}}, &out)
	return out, err
}

// ExchangeToken trades an external ID token for a short-lived Gatehouse
// token (RFC 8693). It sends no credential of its own. A refusal is a
// *gatehouse.OAuthError.
func (c *Client) ExchangeToken(ctx context.Context, idToken, trustPolicy string) (gatehouse.ExchangeResponse, error) {
	var out gatehouse.ExchangeResponse
	form := url.Values{
		"grant_type":         {gatehouse.GrantTokenExchange},
		"subject_token":      {idToken},
		"subject_token_type": {gatehouse.TokenTypeIDToken},
	}
	if trustPolicy != "" {
		form.Set("trust_policy", trustPolicy)
	}
	u := *c.base
	u.Path += "/api/v1/token/exchange"
	u.RawPath = ""
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return out, fmt.Errorf("client: %w", err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(hr)
	if err != nil {
		return out, c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var oe gatehouse.OAuthError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if json.Unmarshal(b, &oe) != nil || oe.Code == "" {
			return out, decodeError(resp.StatusCode, resp.Header, strings.NewReader(string(b)))
		}
		return out, &oe
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(&out); err != nil {
		return out, fmt.Errorf("client: decode the token exchange's answer: %w", err)
	}
	if out.AccessToken == "" {
		return out, fmt.Errorf("client: the token exchange answered without an access_token")
	}
	return out, nil
}
