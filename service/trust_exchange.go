package service

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse"
)

// Token exchange (RFC 8693): a CI job trades the OIDC ID token its platform
// gave it for a short-lived Gatehouse token, under a trust policy. The
// subject token is the only credential, so it is checked strictly: the
// issuer's signature with an asymmetric algorithm, iss exactly, aud, exp,
// nbf and iat with little leeway, a short lifetime, a recent issue, every
// claim condition, and one use only (a replay record in the store, written
// in the transaction that mints, so it holds across restarts and
// replicas).

// The asymmetric algorithms a subject token may be signed with. Never
// none, never HMAC: a policy's keys are public, and an HMAC "signed" with
// a public key proves nothing.
var exchangeAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA,
}

const (
	// MaxSubjectToken bounds the subject token, before it is parsed. CI
	// ID tokens are 1-2 KiB.
	MaxSubjectToken = 16 << 10
	exchangeLeeway  = 60 * time.Second
	maxSubjectLife  = time.Hour        // exp - iat
	maxSubjectAge   = 10 * time.Minute // now - iat
	// replayKeep is how much longer than what it records is accepted a
	// one-time record (a subject token's, past exp plus exchangeLeeway;
	// a CLI login's answer, past its confirmation) is kept: the replica
	// that prunes it and one that checks may read different clocks.
	replayKeep = time.Minute
)

// exchangeRefused is the one answer to every subject token that does not
// pass, whatever the reason: which claim, which key or which check failed
// is for the audit trail and for an administrator's trust test only.
const exchangeRefusedText = "the subject token is not accepted by any trust policy"

func errExchangeRefused() *gatehouse.OAuthError {
	return &gatehouse.OAuthError{Code: gatehouse.OAuthInvalidGrant, Description: exchangeRefusedText}
}

// exchangeRefusal is why a subject token was refused, for the audit trail.
type exchangeRefusal struct{ reason string }

func (r *exchangeRefusal) Error() string { return r.reason }

func refusef(format string, args ...any) *exchangeRefusal {
	return &exchangeRefusal{reason: fmt.Sprintf(format, args...)}
}

// subjectToken is a parsed subject token. claims are unverified until
// verify has checked the signature against a policy's keys.
type subjectToken struct {
	raw    string
	parsed *jwt.JSONWebToken
	alg    string
	kid    string
	iss    string
	claims map[string]any
}

// parseSubjectToken parses a compact JWS whose algorithm is one of
// exchangeAlgs and reads its claims, unverified. It never verifies; a
// token that parses proves nothing yet.
func parseSubjectToken(raw string) (*subjectToken, error) {
	if len(raw) > MaxSubjectToken {
		return nil, refusef("the token exceeds %d bytes", MaxSubjectToken)
	}
	if !canonicalJWS(raw) {
		return nil, refusef("not a compact JWS in canonical base64url (three parts, no padding, line breaks or stray bits)")
	}
	t, err := jwt.ParseSigned(raw, exchangeAlgs)
	if err != nil {
		return nil, refusef("not a compact JWS signed with an allowed algorithm (RS256/384/512, PS256, ES256/384, EdDSA)")
	}
	if len(t.Headers) != 1 {
		return nil, refusef("the token must carry exactly one signature")
	}
	var payload json.RawMessage
	if err := t.UnsafeClaimsWithoutVerification(&payload); err != nil {
		return nil, refusef("the token's payload is not a JSON object")
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	st := &subjectToken{raw: raw, parsed: t, alg: t.Headers[0].Algorithm, kid: t.Headers[0].KeyID, claims: claims}
	iss, ok := claims["iss"].(string)
	if !ok || iss == "" {
		return nil, refusef("the token has no iss claim")
	}
	st.iss = iss
	return st, nil
}

// canonicalJWS reports whether raw is a compact JWS written the one way
// its bytes can be: three base64url parts without padding, each
// re-encoding to itself. The JOSE decoder also takes line breaks and
// non-zero unused bits, so without this one signed token has many
// spellings, and a replay record kept by spelling would not hold.
func canonicalJWS(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	for _, part := range parts {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(part)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != part {
			return false
		}
	}
	return true
}

// decodeClaims reads a JSON object keeping numbers as written, so a large
// numeric id compares exactly.
func decodeClaims(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
		return nil, refusef("the token's payload is not a JSON object")
	}
	return claims, nil
}

// verify checks st against tp: signature, registered claims and claim
// conditions. It returns the verified claims.
func (s *Service) verify(ctx context.Context, tp gatehouse.TrustPolicy, st *subjectToken, now time.Time) (map[string]any, error) {
	if st.iss != tp.Issuer {
		return nil, refusef("iss %q is not the policy's issuer %q", clipClaim(st.iss), tp.Issuer)
	}
	ks, err := s.policyKeys(ctx, tp, st.kid)
	if err != nil {
		return nil, refusef("the issuer's keys are unavailable: %v", err)
	}
	var candidates []jose.JSONWebKey
	if st.kid != "" {
		candidates = ks.Key(st.kid)
		if len(candidates) == 0 {
			return nil, refusef("no key with kid %q among the issuer's keys", clipClaim(st.kid))
		}
	} else {
		candidates = ks.Keys
	}
	var payload json.RawMessage
	verified := false
	for _, k := range candidates {
		if !keyFits(k, st.alg) {
			continue
		}
		if err := st.parsed.Claims(k.Key, &payload); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, refusef("the signature does not verify with the issuer's keys (alg %s, kid %q)", st.alg, clipClaim(st.kid))
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := checkTimes(claims, now); err != nil {
		return nil, err
	}
	if !audienceMatches(claims["aud"], tp.Audiences) {
		return nil, refusef("aud %s contains none of the policy's audiences", clipClaim(fmt.Sprint(claims["aud"])))
	}
	if err := matchClaims(tp.Claims, claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// policyKeys returns the policy's key set: its inline JWKS, or its
// jwksURL's through the cache.
func (s *Service) policyKeys(ctx context.Context, tp gatehouse.TrustPolicy, kid string) (*jose.JSONWebKeySet, error) {
	if len(tp.JWKS) > 0 {
		return parseJWKS(tp.JWKS)
	}
	return s.jwks.keys(ctx, tp, kid)
}

// signingKey reports whether k is a public key of a kind and size the
// accepted algorithms use.
func signingKey(k jose.JSONWebKey) bool {
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return pk.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return pk.Curve == elliptic.P256() || pk.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return len(pk) == ed25519.PublicKeySize
	}
	return false
}

// keyFits reports whether k may verify a signature made with alg: the
// key's kind matches the algorithm, and the key names no other algorithm.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return (alg == "ES256" && pk.Curve == elliptic.P256()) || (alg == "ES384" && pk.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// numericDate reads a NumericDate claim (seconds since the epoch).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, refusef("%s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, true, refusef("%s is not a valid time", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// checkTimes: exp and iat are required; exp, nbf and iat hold at now with
// at most exchangeLeeway of clock skew; the token lives at most an hour
// and was issued at most ten minutes ago.
func checkTimes(claims map[string]any, now time.Time) error {
	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return err
	}
	if !ok {
		return refusef("the token has no exp claim")
	}
	iat, ok, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if !ok {
		return refusef("the token has no iat claim")
	}
	nbf, hasNbf, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	switch {
	case !now.Before(exp.Add(exchangeLeeway)):
		return refusef("the token expired at %s", exp.Format(time.RFC3339))
	case hasNbf && now.Add(exchangeLeeway).Before(nbf):
		return refusef("the token is not valid before %s", nbf.Format(time.RFC3339))
	case now.Add(exchangeLeeway).Before(iat):
		return refusef("the token is issued in the future (%s)", iat.Format(time.RFC3339))
	case exp.Sub(iat) > maxSubjectLife:
		return refusef("the token lives %s (exp - iat), more than %s", exp.Sub(iat), maxSubjectLife)
	case now.Sub(iat) > maxSubjectAge:
		return refusef("the token was issued at %s, more than %s ago", iat.Format(time.RFC3339), maxSubjectAge)
	}
	return nil
}

// audienceMatches: aud (a string or a list of strings) contains one of
// want.
func audienceMatches(aud any, want []string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}

// matchClaims checks every condition against the claims, in name order so
// the reason for a refusal is stable.
func matchClaims(conds map[string]gatehouse.ClaimPatterns, claims map[string]any) error {
	names := make([]string, 0, len(conds))
	for k := range conds {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v, ok := claims[k]
		if !ok || v == nil {
			return refusef("claim %q is missing", k)
		}
		texts, ok := claimTexts(v)
		if !ok {
			return refusef("claim %q is an object or a list of objects, which no condition matches", k)
		}
		if !anyMatches(conds[k], texts) {
			return refusef("claim %q is %s, which matches none of %s", k, clipClaim(strings.Join(quoteAll(texts), ", ")), strings.Join(quoteAll(conds[k]), ", "))
		}
	}
	return nil
}

// claimTexts is a claim value as the texts conditions are matched
// against: a scalar's text, or each scalar of a list (any may match).
func claimTexts(v any) ([]string, bool) {
	if s, ok := gatehouse.ScalarText(v); ok {
		return []string{s}, true
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 || len(list) > 256 {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := gatehouse.ScalarText(x)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func anyMatches(patterns []string, texts []string) bool {
	for _, p := range patterns {
		for _, t := range texts {
			if globMatch(p, t) {
				return true
			}
		}
	}
	return false
}

// globMatch matches s against a pattern in which * stands for any run of
// characters (/ and : included) and every other character for itself.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

// replayKeys name a subject token for the replay record: key is its
// issuer and jti, or, without a jti, its JWS signing input (the protected
// header and the payload, as signed), never its signature, as one signing
// input can carry more than one signature that verifies: an ECDSA
// signature (r, s) has a twin (r, n-s), which anyone holding the token can
// compute (and the issuer's own ECDSA and RSA-PSS signatures of one input
// differ each time). The jti key leaves the signature out too. The token
// is canonical (canonicalJWS), so one signing input has one spelling; a
// numeric jti counts by its text. Hashed, so the record holds no part of
// the token.
//
// legacy, for a token without a jti, is the key earlier versions recorded
// (the whole token's hash), checked too so that a token exchanged before
// an upgrade is not taken again after it; such records are pruned when
// their token expires, like any other.
func replayKeys(iss string, claims map[string]any, raw string) (key, legacy string) {
	jti, _ := claims["jti"].(string)
	if n, ok := claims["jti"].(json.Number); ok {
		jti = "n:" + n.String()
	}
	if jti != "" {
		h := sha256.Sum256([]byte(iss + "\x00" + jti))
		return "jti:" + hex.EncodeToString(h[:]), ""
	}
	h := sha256.Sum256([]byte(raw[:strings.LastIndexByte(raw, '.')]))
	old := sha256.Sum256([]byte(raw))
	return "jws:" + hex.EncodeToString(h[:]), "tok:" + hex.EncodeToString(old[:])
}

// identityClaims are the claims of a CI token that say which job it was,
// recorded with each exchange (GitHub Actions and GitLab CI names).
var identityClaims = []string{"sub", "repository", "repository_id", "ref", "environment", "workflow", "run_id", "project_path", "pipeline_id", "jti"}

// identity renders the external identity for the audit trail: the issuer
// and the identity claims present, quoted and clipped. Never the token.
func identity(iss string, claims map[string]any) string {
	parts := []string{"iss " + strconv.Quote(clipClaim(iss))}
	for _, k := range identityClaims {
		// A list-valued claim (matched when any element matches) is
		// recorded whole, as matched.
		if texts, ok := claimTexts(claims[k]); ok {
			parts = append(parts, k+" "+clipClaim(strings.Join(quoteAll(texts), ", ")))
		}
	}
	return strings.Join(parts, "; ")
}

func clipClaim(s string) string {
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// Exchange trades a subject token for a Gatehouse token under a trust
// policy (RFC 8693). Every refusal is an *gatehouse.OAuthError; a refused
// subject token always gets the one invalid_grant description, and the
// audit trail records why. remoteAddr and userAgent are for that record.
func (s *Service) Exchange(ctx context.Context, req gatehouse.ExchangeRequest, remoteAddr, userAgent string) (gatehouse.ExchangeResponse, error) {
	var zero gatehouse.ExchangeResponse
	invalid := func(code, desc string) (gatehouse.ExchangeResponse, error) {
		return zero, &gatehouse.OAuthError{Code: code, Description: desc}
	}
	switch {
	case req.GrantType == "":
		return invalid(gatehouse.OAuthInvalidRequest, "grant_type is required")
	case req.GrantType != gatehouse.GrantTokenExchange:
		return invalid(gatehouse.OAuthUnsupportedGrantType, "grant_type must be "+gatehouse.GrantTokenExchange)
	case req.SubjectToken == "":
		return invalid(gatehouse.OAuthInvalidRequest, "subject_token is required")
	case len(req.SubjectToken) > MaxSubjectToken:
		return invalid(gatehouse.OAuthInvalidRequest, fmt.Sprintf("subject_token exceeds %d bytes", MaxSubjectToken))
	case req.SubjectTokenType == "":
		return invalid(gatehouse.OAuthInvalidRequest, "subject_token_type is required")
	case req.SubjectTokenType != gatehouse.TokenTypeJWT && req.SubjectTokenType != gatehouse.TokenTypeIDToken:
		return invalid(gatehouse.OAuthUnsupportedTokenType, "subject_token_type must be "+gatehouse.TokenTypeJWT+" or "+gatehouse.TokenTypeIDToken)
	case req.RequestedTokenType != "" && req.RequestedTokenType != gatehouse.TokenTypeAccessToken:
		return invalid(gatehouse.OAuthInvalidRequest, "requested_token_type must be "+gatehouse.TokenTypeAccessToken)
	case req.ActorToken != "":
		return invalid(gatehouse.OAuthInvalidRequest, "actor_token is not supported: Gatehouse does not do delegation")
	case req.TrustPolicy != "" && !dnsLabel.MatchString(req.TrustPolicy):
		return invalid(gatehouse.OAuthInvalidTarget, "trust_policy is not a trust policy name")
	}
	fail := func(policy string, st *subjectToken, why error) (gatehouse.ExchangeResponse, error) {
		s.auditExchangeFailure(ctx, policy, st, why, remoteAddr, userAgent)
		var ge *gatehouse.Error
		if errors.As(why, &ge) {
			return zero, oauthOf(ge)
		}
		return zero, errExchangeRefused()
	}
	st, err := parseSubjectToken(req.SubjectToken)
	if err != nil {
		return fail(req.TrustPolicy, nil, err)
	}
	now := s.now()
	tp, claims, err := s.selectPolicy(ctx, req.TrustPolicy, st, now)
	if amb, ok := err.(ambiguousPolicies); ok {
		s.auditExchangeFailure(ctx, req.TrustPolicy, st, amb, remoteAddr, userAgent)
		return zero, errAmbiguous
	}
	if err != nil {
		var oe *gatehouse.OAuthError
		if errors.As(err, &oe) {
			s.auditExchangeFailure(ctx, req.TrustPolicy, st, errors.New(oe.Description), remoteAddr, userAgent)
			return zero, oe
		}
		return fail(req.TrustPolicy, st, err)
	}
	exp, _, _ := numericDate(claims, "exp")
	key, legacy := replayKeys(st.iss, claims, st.raw)
	// The policy's ttl, within the server's maximum lifetime as it is
	// now: a policy saved under a longer maximum (tokens.maxLifetime
	// lowered since) mints no token that outlives this server's maximum.
	ttl := min(time.Duration(tp.TTL)*time.Second, s.maxLifetime)
	rec := gatehouse.Token{
		Name:      "exchanged through " + tp.Name,
		Scopes:    tp.Scopes,
		ExpiresAt: now.Add(ttl),
		CreatedBy: gatehouse.TokenCreator(tp.Name),
	}
	ev := gatehouse.Event{Type: gatehouse.EventTokenExchanged, Actor: gatehouse.TokenCreator(tp.Name),
		RemoteAddr: remoteAddr, UserAgent: clipClaim(userAgent),
		Detail: "policy " + strconv.Quote(tp.Name) + "; " + identity(st.iss, claims)}
	if tp.Project != "" {
		rec.Kind, rec.Project, rec.Role = gatehouse.KindProject, tp.Project, tp.Role
		ev.Resource, ev.Object = "projects", tp.Project+"/"+tp.Role
	} else {
		rec.Kind, rec.Account = gatehouse.KindAPI, tp.Account
		ev.Resource, ev.Object = "accounts", tp.Account
	}
	// In the minting transaction: the policy is still the one verified
	// against (a change or a deletion since would revoke this token as it
	// is minted, so it must not be minted), its subject may still hold
	// tokens, and the subject token has not been used before.
	check := func(tx gatehouse.Tx) error {
		cur, err := tx.GetTrustPolicy(ctx, tp.Name)
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) || (err == nil && !cur.UpdatedAt.Equal(tp.UpdatedAt)) {
			return refusef("the trust policy changed or was deleted during the exchange")
		}
		if err != nil {
			return err
		}
		if err := trustSubjectTx(ctx, tx, tp); err != nil {
			if gatehouse.IsCode(err, gatehouse.ENOTFOUND) || gatehouse.IsCode(err, gatehouse.EPRECONDITION) {
				return refusef("the policy's subject cannot hold tokens: %s", gatehouse.ErrorMessage(err))
			}
			return err
		}
		if legacy != "" {
			used, err := tx.ExchangeReplayed(ctx, legacy)
			if err != nil {
				return err
			}
			if used {
				return refusef("the subject token was already exchanged (replay)")
			}
		}
		if err := tx.AddExchangeReplay(ctx, key, exp.Add(exchangeLeeway+replayKeep)); err != nil {
			if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
				return refusef("the subject token was already exchanged (replay)")
			}
			return err
		}
		return nil
	}
	nt, err := s.mint(ctx, nil, rec, check, ev)
	if err != nil {
		return fail(tp.Name, st, err)
	}
	return gatehouse.ExchangeResponse{
		AccessToken:     nt.Token,
		IssuedTokenType: gatehouse.TokenTypeAccessToken,
		TokenType:       "Bearer",
		ExpiresIn:       int64(ttl / time.Second),
	}, nil
}

// selectPolicy finds the policy that accepts st: the named one, or the
// one policy of st's issuer whose conditions it meets. A token that more
// than one policy accepts must name one (invalid_target).
func (s *Service) selectPolicy(ctx context.Context, name string, st *subjectToken, now time.Time) (gatehouse.TrustPolicy, map[string]any, error) {
	var candidates []gatehouse.TrustPolicy
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		candidates = nil
		if name != "" {
			tp, err := tx.GetTrustPolicy(ctx, name)
			if gatehouse.IsCode(err, gatehouse.ENOTFOUND) {
				return refusef("no trust policy %q", name)
			}
			candidates = append(candidates, tp)
			return err
		}
		all, err := tx.ListTrustPolicies(ctx)
		for _, tp := range all {
			if tp.Issuer == st.iss {
				candidates = append(candidates, tp)
			}
		}
		return err
	})
	if err != nil {
		return gatehouse.TrustPolicy{}, nil, err
	}
	if len(candidates) == 0 {
		return gatehouse.TrustPolicy{}, nil, refusef("no trust policy has issuer %q", clipClaim(st.iss))
	}
	var (
		matched []gatehouse.TrustPolicy
		claims  map[string]any
		reasons []string
	)
	for _, tp := range candidates {
		c, err := s.verify(ctx, tp, st, now)
		if err != nil {
			var r *exchangeRefusal
			if !errors.As(err, &r) {
				return gatehouse.TrustPolicy{}, nil, err
			}
			reasons = append(reasons, tp.Name+": "+r.reason)
			continue
		}
		matched, claims = append(matched, tp), c
	}
	switch len(matched) {
	case 0:
		return gatehouse.TrustPolicy{}, nil, &exchangeRefusal{reason: strings.Join(reasons, "; ")}
	case 1:
		return matched[0], claims, nil
	}
	// The policies' names are not the anonymous caller's to learn; the
	// audit record of the refusal has them.
	names := make([]string, len(matched))
	for i, tp := range matched {
		names[i] = tp.Name
	}
	return gatehouse.TrustPolicy{}, nil, ambiguousPolicies(names)
}

// ambiguousPolicies: the subject token matches these policies, and the
// request named none. The answer does not name them.
type ambiguousPolicies []string

func (a ambiguousPolicies) Error() string {
	return fmt.Sprintf("matches %d trust policies (%s); trust_policy names none", len(a), strings.Join(a, ", "))
}

var errAmbiguous = &gatehouse.OAuthError{Code: gatehouse.OAuthInvalidTarget,
	Description: "the subject token matches several trust policies; name one with trust_policy"}

// oauthOf turns a store or internal error into the OAuth shape.
func oauthOf(err *gatehouse.Error) *gatehouse.OAuthError {
	if err.Code == gatehouse.EUNAVAILABLE {
		return &gatehouse.OAuthError{Code: gatehouse.OAuthUnavailable, Description: "store unavailable; try again shortly"}
	}
	return &gatehouse.OAuthError{Code: gatehouse.OAuthServerError, Description: "internal error"}
}

// auditExchangeFailure records a refused exchange: the policy (if named or
// found), why, and the identity the token claims, marked unverified
// (never the token itself).
func (s *Service) auditExchangeFailure(ctx context.Context, policy string, st *subjectToken, why error, remoteAddr, userAgent string) {
	// The caller is anonymous: a policy it named is only a claim.
	actor := "anonymous"
	detail := "refused: " + clipClaim(why.Error())
	if policy != "" {
		detail = "policy " + strconv.Quote(policy) + "; " + detail
	}
	var ge *gatehouse.Error
	if errors.As(why, &ge) {
		detail = "failed: " + ge.Code
		s.log.ErrorContext(ctx, "token exchange failed", "err", why)
	}
	if st != nil {
		detail += "; unverified " + identity(st.iss, st.claims)
	}
	s.recordLifecycle(ctx, gatehouse.Event{Type: gatehouse.EventExchangeFailed, Actor: actor, Decision: "deny",
		RemoteAddr: remoteAddr, UserAgent: clipClaim(userAgent), Detail: detail})
}

// TestTrustPolicy says whether raw would be accepted by the named policy
// now, without exchanging it (its jti stays unused). A caller who may read
// trust policies (settings, get, trust) also learns which condition
// failed, and the token's claims; anyone else only the verdict, and the
// same verdict for a policy that does not exist.
func (s *Service) TestTrustPolicy(ctx context.Context, p *Principal, name, raw string) (gatehouse.TrustTestResult, error) {
	if p == nil {
		return gatehouse.TrustTestResult{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "no credentials")
	}
	if raw == "" {
		return gatehouse.TrustTestResult{}, gatehouse.Errorf(gatehouse.EINVALID, "token is required: the ID token to test")
	}
	if len(raw) > MaxSubjectToken {
		return gatehouse.TrustTestResult{}, gatehouse.Errorf(gatehouse.EINVALID, "token exceeds %d bytes", MaxSubjectToken)
	}
	admin := s.Can(p, "settings", "get", "trust")
	p.noteDecision(Decision{Resource: "settings", Action: "get", Object: "trust", Allowed: admin, Via: gatehouse.ViaPolicy})
	res, err := s.evaluate(ctx, name, raw)
	if err != nil {
		if gatehouse.IsCode(err, gatehouse.ENOTFOUND) && !admin {
			return gatehouse.TrustTestResult{Accepted: false}, nil
		}
		return gatehouse.TrustTestResult{}, err
	}
	if !admin {
		return gatehouse.TrustTestResult{Accepted: res.Accepted}, nil
	}
	return res, nil
}

// evaluate runs every check of an exchange under the named policy but
// mints nothing and records no use.
func (s *Service) evaluate(ctx context.Context, name, raw string) (gatehouse.TrustTestResult, error) {
	tp, err := s.trustPolicy(ctx, name)
	if err != nil {
		return gatehouse.TrustTestResult{}, err
	}
	out := gatehouse.TrustTestResult{Subject: tp.Subject()}
	st, err := parseSubjectToken(raw)
	if err != nil {
		out.Failed = err.Error()
		return out, nil
	}
	out.Claims = st.claims
	claims, err := s.verify(ctx, tp, st, s.now())
	if err != nil {
		var r *exchangeRefusal
		if !errors.As(err, &r) {
			return gatehouse.TrustTestResult{}, err
		}
		out.Failed = r.reason
		return out, nil
	}
	out.Claims = claims
	key, legacy := replayKeys(st.iss, claims, raw)
	var used bool
	err = s.store.View(ctx, func(tx gatehouse.Tx) error {
		if err := trustSubjectTx(ctx, tx, tp); err != nil {
			if gatehouse.IsCode(err, gatehouse.ENOTFOUND) || gatehouse.IsCode(err, gatehouse.EPRECONDITION) {
				out.Failed = "the policy's subject cannot hold tokens: " + gatehouse.ErrorMessage(err)
				return nil
			}
			return err
		}
		var err error
		used, err = tx.ExchangeReplayed(ctx, key)
		if err != nil || used || legacy == "" {
			return err
		}
		used, err = tx.ExchangeReplayed(ctx, legacy)
		return err
	})
	if err != nil {
		return gatehouse.TrustTestResult{}, err
	}
	switch {
	case out.Failed != "":
	case used:
		out.Failed = "the subject token was already exchanged (replay)"
	default:
		out.Accepted = true
	}
	return out, nil
}
