package server

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// The dashboard's form parsers: plain functions from url.Values to domain
// requests, so that they can be fuzzed without a server.

// maxScopeRows bounds the scope rows one form may hold.
const maxScopeRows = 20

// expiryChoice is one entry of the Expiration menu.
type expiryChoice struct {
	Value    string // the form value: a Go duration or "custom"
	Label    string
	Selected bool
}

// presetExpiries are the Expiration menu entries, shortest first.
var presetExpiries = []struct {
	d     time.Duration
	label string
}{
	{time.Hour, "1 hour"},
	{12 * time.Hour, "12 hours"},
	{24 * time.Hour, "1 day"},
	{7 * 24 * time.Hour, "7 days"},
	{30 * 24 * time.Hour, "30 days"},
}

const (
	defaultExpiry = "12h0m0s"
	customExpiry  = "custom"
)

// expiryChoices lists the presets the server maximum allows. If none
// fits, the maximum itself is offered.
func expiryChoices(maxLife time.Duration) []expiryChoice {
	var out []expiryChoice
	for _, p := range presetExpiries {
		if p.d <= maxLife {
			out = append(out, expiryChoice{Value: p.d.String(), Label: p.label})
		}
	}
	if len(out) == 0 {
		out = append(out, expiryChoice{Value: maxLife.String(), Label: humanDuration(maxLife) + " (server maximum)"})
	}
	return out
}

// defaultChoice is the preselected expiry: 12 hours when allowed, else
// the longest allowed choice.
func defaultChoice(choices []expiryChoice) string {
	for _, c := range choices {
		if c.Value == defaultExpiry {
			return c.Value
		}
	}
	return choices[len(choices)-1].Value
}

// scopeRow is one (resource, action, object) row of the form.
type scopeRow struct {
	Resource, Action, Object string
}

// tokenForm is the Generate New Token form as submitted.
type tokenForm struct {
	Name        string
	Expiration  string
	CustomHours string
	Scopes      []scopeRow
}

// parseTokenForm turns the form into a token request. Problems come back
// as messages for the form (all of them at once); the request is only
// meaningful when there are none. maxLife is the server's longest lifetime;
// allowScopes is false for project role tokens.
func parseTokenForm(v url.Values, maxLife time.Duration, allowScopes bool) (tokenForm, gatehouse.TokenRequest, []string) {
	f := tokenForm{
		Name:        strings.TrimSpace(v.Get("name")),
		Expiration:  v.Get("expiration"),
		CustomHours: strings.TrimSpace(v.Get("custom_hours")),
	}
	var problems []string
	var req gatehouse.TokenRequest

	switch n := utf8.RuneCountInString(f.Name); {
	case !utf8.ValidString(f.Name):
		problems = append(problems, "Name must be valid text.")
	case n == 0:
		problems = append(problems, "Name is required: say what the token is for, e.g. “CI deploys for team-a”.")
	case n > 100:
		problems = append(problems, "Name must be at most 100 characters.")
	}
	req.Name = f.Name

	choices := expiryChoices(maxLife)
	if f.Expiration == "" {
		f.Expiration = defaultChoice(choices)
	}
	switch {
	case f.Expiration == customExpiry:
		maxHours := int64(maxLife / time.Hour)
		h, err := strconv.ParseInt(f.CustomHours, 10, 64)
		if err != nil || h < 1 || h > maxHours {
			if maxHours < 1 {
				problems = append(problems, "Custom expiration is not available: the server maximum is under an hour.")
			} else {
				problems = append(problems, fmt.Sprintf("Custom expiration must be a whole number of hours from 1 to %d.", maxHours))
			}
			break
		}
		secs := h * 3600
		req.ExpiresIn = &secs
	default:
		found := false
		for _, c := range choices {
			if c.Value == f.Expiration {
				d, _ := time.ParseDuration(c.Value)
				secs := int64(d / time.Second)
				req.ExpiresIn = &secs
				found = true
			}
		}
		if !found {
			problems = append(problems, "Choose an expiration from the list.")
		}
	}

	res, act, obj := v["scope_resource"], v["scope_action"], v["scope_object"]
	rows := max(len(res), len(act), len(obj))
	if rows > maxScopeRows {
		problems = append(problems, fmt.Sprintf("At most %d scope rows.", maxScopeRows))
		rows = maxScopeRows
	}
	for i := 0; i < rows; i++ {
		row := scopeRow{Resource: strings.TrimSpace(at(res, i)), Action: strings.TrimSpace(at(act, i)), Object: strings.TrimSpace(at(obj, i))}
		if row == (scopeRow{}) {
			continue
		}
		f.Scopes = append(f.Scopes, row)
		if !allowScopes {
			continue
		}
		if row.Resource == "" || row.Action == "" || row.Object == "" {
			problems = append(problems, fmt.Sprintf("Scope %d: resource, action and object are all required (use * for any).", len(f.Scopes)))
			continue
		}
		req.Scopes = append(req.Scopes, gatehouse.Scope(row))
	}
	if !allowScopes && len(f.Scopes) > 0 {
		problems = append(problems, "Project role tokens carry their role's policies; they take no scopes.")
		f.Scopes = nil
	}
	return f, req, problems
}

// parseIssuedBefore reads the break-glass "issued before" field: the
// browser's datetime-local value (taken as UTC) or RFC 3339.
func parseIssuedBefore(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "issued before must be a date and time, e.g. 2026-01-31T18:00 (UTC)")
}

// bulkRevokeForm is the break-glass form as submitted.
type bulkRevokeForm struct {
	Account, Project, Role, Kind, IssuedBefore string
}

// parseBulkRevokeForm turns the break-glass form into a request.
func parseBulkRevokeForm(v url.Values) (bulkRevokeForm, gatehouse.BulkRevoke, error) {
	f := bulkRevokeForm{
		Account:      strings.TrimSpace(v.Get("account")),
		Project:      strings.TrimSpace(v.Get("project")),
		Role:         strings.TrimSpace(v.Get("role")),
		Kind:         strings.TrimSpace(v.Get("kind")),
		IssuedBefore: strings.TrimSpace(v.Get("issued_before")),
	}
	req := gatehouse.BulkRevoke{Account: f.Account, Project: f.Project, Role: f.Role, Kind: gatehouse.TokenKind(f.Kind)}
	t, err := parseIssuedBefore(f.IssuedBefore)
	if err != nil {
		return f, req, err
	}
	// Whole seconds: the dry run and the confirmed revocation, which
	// posts the form back, must select the same tokens.
	t = t.Truncate(time.Second)
	req.IssuedBefore = t
	if !t.IsZero() {
		f.IssuedBefore = t.Format("2006-01-02T15:04:05")
	}
	return f, req, nil
}

// auditQuery is the audit page's filter as given in the URL.
type auditQuery struct {
	Actor, Account, Type, Decision, Since, Until, Cursor string
	TokenID, Resource, Action, Route, Status             string
}

// auditEventTypes are the event types the filter offers.
var auditEventTypes = []string{
	gatehouse.EventRequest, gatehouse.EventTokenCreated, gatehouse.EventTokenRevoked,
	gatehouse.EventTokenRotated, gatehouse.EventTokenExpired, gatehouse.EventLoginSucceeded,
	gatehouse.EventLoginFailed, gatehouse.EventLoginThrottled, gatehouse.EventLogout,
	gatehouse.EventAccountChanged, gatehouse.EventPolicyChanged, gatehouse.EventProjectChanged,
	gatehouse.EventSSOLoginRefused, gatehouse.EventSSOGroupsChanged, gatehouse.EventSSORefreshRefused,
}

// parseAuditQuery turns the audit filter into an event filter.
func parseAuditQuery(v url.Values) (auditQuery, gatehouse.EventFilter, error) {
	q := auditQuery{
		Actor:    strings.TrimSpace(v.Get("actor")),
		Account:  strings.TrimSpace(v.Get("account")),
		Type:     v.Get("type"),
		Decision: v.Get("decision"),
		Since:    strings.TrimSpace(v.Get("since")),
		Until:    strings.TrimSpace(v.Get("until")),
		Cursor:   v.Get("cursor"),
		TokenID:  strings.TrimSpace(v.Get("tokenId")),
		Resource: strings.TrimSpace(v.Get("resource")),
		Action:   strings.TrimSpace(v.Get("action")),
		Route:    strings.TrimSpace(v.Get("route")),
		Status:   strings.TrimSpace(v.Get("status")),
	}
	f := gatehouse.EventFilter{Actor: q.Actor, Account: q.Account, TokenID: q.TokenID,
		Resource: q.Resource, Action: q.Action, Route: q.Route, Limit: 50}
	if q.Status != "" {
		n, err := strconv.Atoi(q.Status)
		if err != nil || n < 100 || n > 599 || strconv.Itoa(n) != q.Status {
			return q, f, gatehouse.Errorf(gatehouse.EINVALID, "status must be an HTTP status code from 100 to 599")
		}
		f.Status = n
	}
	if q.Type != "" {
		known := false
		for _, t := range auditEventTypes {
			known = known || t == q.Type
		}
		if !known {
			return q, f, gatehouse.Errorf(gatehouse.EINVALID, "unknown event type")
		}
		f.Type = q.Type
	}
	switch q.Decision {
	case "", "allow", "deny":
		f.Decision = q.Decision
	default:
		return q, f, gatehouse.Errorf(gatehouse.EINVALID, "decision must be allow or deny")
	}
	var err error
	if f.Since, err = parseIssuedBefore(q.Since); err != nil {
		return q, f, gatehouse.Errorf(gatehouse.EINVALID, "“from” must be a date and time (UTC)")
	}
	if f.Until, err = parseIssuedBefore(q.Until); err != nil {
		return q, f, gatehouse.Errorf(gatehouse.EINVALID, "“to” must be a date and time (UTC)")
	}
	return q, f, nil
}

// values encodes the filter (without the cursor) for links.
func (q auditQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"actor": q.Actor, "account": q.Account, "type": q.Type, "decision": q.Decision, "since": q.Since, "until": q.Until,
		"tokenId": q.TokenID, "resource": q.Resource, "action": q.Action, "route": q.Route, "status": q.Status} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

// humanDuration writes a duration as people say it: "30 minutes",
// "12 hours", "7 days".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return plural(int64((d+time.Second-1)/time.Second), "second")
}
