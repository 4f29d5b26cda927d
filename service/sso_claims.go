package service

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// ssoName is the account-name rule for SSO usernames: the characters of a
// local account name (lowercase letters, digits, '-', '_', '.', starting
// and ending with a letter or digit on each side), with at most one '@' so
// that an email address is a name. A claim that does not already have this
// form is refused, not rewritten: lowercasing or trimming could make two
// users of the provider one account.
var ssoName = regexp.MustCompile(`^[a-z0-9]([-._a-z0-9]*[a-z0-9])?(@[a-z0-9]([-._a-z0-9]*[a-z0-9])?)?$`)

// maxSSOName is the longest SSO username (an email address's limit).
const maxSSOName = 254

// maxSSOGroups bounds how many groups of one user are kept.
const maxSSOGroups = 500

// validSSOName reports whether name may be an SSO account's name.
func validSSOName(name string) bool {
	return len(name) <= maxSSOName && ssoName.MatchString(name)
}

// validAccountName accepts the name of any account, local or SSO.
func validAccountName(name string) bool {
	return accountName.MatchString(name) || validSSOName(name)
}

// ssoIdentity is who an ID token (or userinfo answer) says the user is.
type ssoIdentity struct {
	Subject  string
	Username string
	// Groups are the provider's groups that may be used: valid group
	// names, none naming a role (role:..., proj:...), without repeats,
	// sorted.
	Groups []string
	// Dropped counts the provider's groups left out.
	Dropped int
}

// identityFromClaims reads the username and groups out of a token's
// claims. usernameClaim names the claim that holds the username; when a
// token does not carry it, the username is the sub claim. An email
// username needs email_verified to be true (the boolean, or the string
// "true" in any case, as Cognito sends it): anything else, or no
// email_verified at all, is refused, because the provider does not vouch
// for the address. groupsClaim holds a list of strings (a single string
// is one group); groups that cannot be used are left out, and so a group
// never stands for a role: the provider's groups grant only what the
// policy binds to them with g lines.
func identityFromClaims(claims map[string]any, usernameClaim, groupsClaim string) (ssoIdentity, error) {
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return ssoIdentity{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's token has no subject (sub)")
	}
	id := ssoIdentity{Subject: sub}
	raw, present := claims[usernameClaim]
	name, isString := raw.(string)
	switch {
	case !present || raw == nil:
		name = sub
	case !isString:
		return ssoIdentity{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's %s claim is not a string", usernameClaim)
	case usernameClaim == "email" && !emailVerified(claims["email_verified"]):
		return ssoIdentity{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider does not say it verified this user's email address (email_verified), so it cannot be the username")
	}
	if systemActors[name] {
		return ssoIdentity{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the username %q from the identity provider is reserved: the audit trail names the server's own actions with it", name)
	}
	if !validSSOName(name) {
		return ssoIdentity{}, gatehouse.Errorf(gatehouse.EUNAUTHORIZED,
			"the username %q from the identity provider's %s claim is not a valid account name: it must be lowercase letters, digits, '-', '_' and '.' (with at most one '@'), starting and ending with a letter or digit",
			clip(name, 80), claimName(present, usernameClaim))
	}
	id.Username = name
	id.Groups, id.Dropped = groupsFromClaims(claims, groupsClaim)
	return id, nil
}

// emailVerified reports whether an email_verified claim says yes: the
// boolean true, or the string "true" in any case.
func emailVerified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

// groupsFromClaims reads the usable groups out of a token's claims (see
// identityFromClaims), and counts those left out.
func groupsFromClaims(claims map[string]any, groupsClaim string) (out []string, dropped int) {
	var groups []string
	switch g := claims[groupsClaim].(type) {
	case string:
		groups = []string{g}
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				groups = append(groups, s)
			} else {
				dropped++
			}
		}
	case nil:
	default:
		dropped++
	}
	out = []string{}
	for _, g := range groups {
		if checkGroupName(g) != nil || slices.Contains(out, g) || len(out) >= maxSSOGroups {
			dropped++
			continue
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return out, dropped
}

func claimName(present bool, claim string) string {
	if present {
		return claim
	}
	return "sub"
}

// clip shortens s to at most n bytes for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
