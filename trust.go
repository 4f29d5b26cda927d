package gatehouse

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// TrustPolicy says who may exchange an external OIDC ID token (a CI job's,
// a Kubernetes service account's) for a short-lived Gatehouse token, and
// for what: the issuer whose keys must have signed it, the audiences it
// must carry, the claims it must match, and the subject and scopes of the
// token it is exchanged for (RFC 8693 token exchange).
type TrustPolicy struct {
	Name string `json:"name"`
	// Issuer is the token's iss, compared exactly: an https:// URL, or
	// http:// on a loopback address.
	Issuer string `json:"issuer"`
	// JWKSURL is where the issuer publishes its signing keys. JWKS, an
	// inline JWKS document, replaces it for issuers Gatehouse cannot
	// reach; exactly one of the two is set.
	JWKSURL string          `json:"jwksURL,omitempty"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	// Audiences: the token's aud must contain one of them.
	Audiences []string `json:"audiences"`
	// Claims: every claim named must be present and match one of its
	// patterns (exact, or a glob where * matches any run of characters).
	// At least one claim is required.
	Claims map[string]ClaimPatterns `json:"claims"`
	// The subject of the issued token: an account with the apiKey
	// capability, or a project role (Project and Role).
	Account string `json:"account,omitempty"`
	Project string `json:"project,omitempty"`
	Role    string `json:"role,omitempty"`
	// TTL is the issued token's life in seconds (default 900, at most 3600).
	TTL int64 `json:"ttl"`
	// Scopes narrow the issued token, as for API tokens.
	Scopes    []Scope   `json:"scopes"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Subject is the RBAC subject of the tokens the policy issues.
func (p TrustPolicy) Subject() string {
	if p.Project != "" {
		return ProjectSubject(p.Project, p.Role)
	}
	return p.Account
}

// TokenCreator is the createdBy of the tokens issued through the policy
// named name: the mark by which they are found when it changes.
func TokenCreator(name string) string { return TrustCreatorPrefix + name }

// TrustCreatorPrefix starts the createdBy of every token issued through a
// trust policy.
const TrustCreatorPrefix = "trust-policy:"

// Exchanged reports whether t was issued by a token exchange (through a
// trust policy).
func (t Token) Exchanged() bool { return strings.HasPrefix(t.CreatedBy, TrustCreatorPrefix) }

// ClaimPatterns are the accepted values of one claim: any of them. In JSON
// and YAML it is a string, a number or a boolean (compared by its text, so
// 123456 and "123456" are the same condition), or a list of those.
type ClaimPatterns []string

// UnmarshalJSON accepts one scalar or a list of scalars.
func (c *ClaimPatterns) UnmarshalJSON(b []byte) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	list, ok := raw.([]any)
	if !ok {
		list = []any{raw}
	}
	out := make(ClaimPatterns, 0, len(list))
	for _, v := range list {
		s, ok := ScalarText(v)
		if !ok {
			return errors.New("a claim condition is a string, a number, a boolean or a list of those")
		}
		out = append(out, s)
	}
	*c = out
	return nil
}

// UnmarshalYAML accepts one scalar or a list of scalars (the config file).
func (c *ClaimPatterns) UnmarshalYAML(unmarshal func(any) error) error {
	var list []string
	if err := unmarshal(&list); err == nil {
		*c = list
		return nil
	}
	var one string
	if err := unmarshal(&one); err != nil {
		return errors.New("a claim condition is a string, a number, a boolean or a list of those")
	}
	*c = ClaimPatterns{one}
	return nil
}

// ScalarText is the text a claim value is compared by: a string as it is,
// an integer in decimal, any other number as written, a boolean as true or
// false. Objects, lists and null have none.
func ScalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return strconv.FormatUint(u, 10), true
		}
		// 1e3 or 1.0: an integer written another way reads as one.
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f == float64(int64(f)) && f < 1<<53 && f > -(1<<53) {
			return strconv.FormatInt(int64(f), 10), true
		}
		return string(v), true
	case float64:
		if v == float64(int64(v)) && v < 1<<53 && v > -(1<<53) {
			return strconv.FormatInt(int64(v), 10), true
		}
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// The wire constants of RFC 8693 token exchange.
const (
	GrantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// Audit event types of token exchange and trust policies.
const (
	EventTokenExchanged = "token.exchanged"
	EventExchangeFailed = "token.exchange_failed"
	EventTrustChanged   = "trust.changed"
)

// ExchangeRequest is the form of POST /api/v1/token/exchange.
type ExchangeRequest struct {
	GrantType          string
	SubjectToken       string
	SubjectTokenType   string
	RequestedTokenType string
	TrustPolicy        string
	// ActorToken is refused: Gatehouse does not do delegation.
	ActorToken string
}

// ExchangeResponse answers a successful token exchange.
type ExchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

// OAuth error codes of the token exchange (RFC 6749 §5.2, RFC 8693 §2.2.2).
const (
	OAuthInvalidRequest       = "invalid_request"
	OAuthInvalidGrant         = "invalid_grant"
	OAuthInvalidTarget        = "invalid_target"
	OAuthUnsupportedTokenType = "unsupported_token_type"
	OAuthUnsupportedGrantType = "unsupported_grant_type"
	OAuthServerError          = "server_error"
	OAuthUnavailable          = "temporarily_unavailable"
)

// OAuthError is the answer to a refused token exchange, in the OAuth error
// shape. Description is safe to show: every failure of the subject token
// a caller should not tell apart has one and the same description.
type OAuthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// TrustTest asks whether a token would be accepted by a trust policy.
type TrustTest struct {
	Token string `json:"token"`
}

// TrustTestResult answers a TrustTest. Failed says which condition failed
// and Claims what the token claims; both only for a caller allowed to read
// the policy (settings, get, trust).
type TrustTestResult struct {
	Accepted bool           `json:"accepted"`
	Failed   string         `json:"failed,omitempty"`
	Subject  string         `json:"subject,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`
}
