package config

import (
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// TrustPolicy is a trust policy declared in the file (trustPolicies): who
// may exchange an external OIDC ID token for a short-lived Gatehouse token.
// At start each is created, or replaced when it differs from the stored one
// (which revokes the tokens issued through it); policies made through the
// API and absent here are left alone.
type TrustPolicy struct {
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
	// JWKSURL, or JWKS: the issuer's keys as an inline JWKS document.
	JWKSURL   string         `yaml:"jwksURL"`
	JWKS      map[string]any `yaml:"jwks,omitempty"`
	Audiences []string       `yaml:"audiences"`
	// Claims: each claim must match one of its values (a value or a list;
	// * matches any run of characters).
	Claims  map[string]gatehouse.ClaimPatterns `yaml:"claims"`
	Account string                             `yaml:"account"`
	Project string                             `yaml:"project"`
	Role    string                             `yaml:"role"`
	// TTL of the issued tokens in seconds: default 900, at most 3600.
	TTL    int64        `yaml:"ttl"`
	Scopes []TrustScope `yaml:"scopes"`
}

// TrustScope narrows the tokens a trust policy issues.
type TrustScope struct {
	Resource string `yaml:"resource"`
	Action   string `yaml:"action"`
	Object   string `yaml:"object"`
}

// Policy returns the policy in the domain's form.
func (t TrustPolicy) Policy() (gatehouse.TrustPolicy, error) {
	tp := gatehouse.TrustPolicy{
		Name: t.Name, Issuer: t.Issuer, JWKSURL: t.JWKSURL, Audiences: t.Audiences, Claims: t.Claims,
		Account: t.Account, Project: t.Project, Role: t.Role, TTL: t.TTL,
	}
	if t.JWKS != nil {
		b, err := json.Marshal(t.JWKS)
		if err != nil {
			return tp, fmt.Errorf("jwks: %v", err)
		}
		tp.JWKS = b
	}
	for _, sc := range t.Scopes {
		tp.Scopes = append(tp.Scopes, gatehouse.Scope(sc))
	}
	return tp, nil
}

// TrustPolicyList returns the file's trust policies in the domain's form.
func (c Config) TrustPolicyList() ([]gatehouse.TrustPolicy, error) {
	out := make([]gatehouse.TrustPolicy, 0, len(c.TrustPolicies))
	for i, t := range c.TrustPolicies {
		tp, err := t.Policy()
		if err != nil {
			return nil, fmt.Errorf("trustPolicies[%d]: %w", i, err)
		}
		out = append(out, tp)
	}
	return out, nil
}

// trustProblems checks the file's trust policies with the same rules as
// the API, but for what needs the store (the subject exists, the scopes
// lie within its permissions), which the server checks at start.
func (c Config) trustProblems() []error {
	var errs []error
	seen := map[string]bool{}
	for i, t := range c.TrustPolicies {
		setting := fmt.Sprintf("trustPolicies[%d]", i)
		tp, err := t.Policy()
		if err == nil {
			_, err = service.NormalTrustPolicy(tp)
		}
		if err != nil {
			errs = append(errs, &SettingError{Setting: setting, Problem: gatehouse.ErrorMessage(err)})
			continue
		}
		if seen[tp.Name] {
			errs = append(errs, &SettingError{Setting: setting + ".name", Problem: fmt.Sprintf("%q is declared twice", tp.Name)})
		}
		seen[tp.Name] = true
	}
	return errs
}
