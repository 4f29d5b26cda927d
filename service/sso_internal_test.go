package service

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/seal"
	"github.com/gatehouse/gatehouse/policy"
)

func TestIdentityFromClaims(t *testing.T) {
	cases := map[string]struct {
		claims   string
		claim    string // the username claim; default email
		user     string
		groups   []string
		dropped  int
		wantCode string
	}{
		"ok/email":              {claims: `{"sub":"1","email":"alice@example.com","email_verified":true,"groups":["b","a"]}`, user: "alice@example.com", groups: []string{"a", "b"}},
		"ok/no email: sub":      {claims: `{"sub":"carol","groups":"devs"}`, user: "carol", groups: []string{"devs"}},
		"ok/verified string":    {claims: `{"sub":"1","email":"bob@example.com","email_verified":"true"}`, user: "bob@example.com", groups: []string{}},
		"ok/verified TRUE":      {claims: `{"sub":"1","email":"bob@example.com","email_verified":"TRUE"}`, user: "bob@example.com", groups: []string{}},
		"ok/no email: no check": {claims: `{"sub":"carol","email_verified":false}`, user: "carol", groups: []string{}},
		"ok/other claim":        {claims: `{"sub":"1","preferred_username":"bob"}`, claim: "preferred_username", user: "bob", groups: []string{}},
		"fail/verified unsaid":  {claims: `{"sub":"1","email":"bob@example.com"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified null":    {claims: `{"sub":"1","email":"bob@example.com","email_verified":null}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified 'false'": {claims: `{"sub":"1","email":"bob@example.com","email_verified":"false"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified 1":       {claims: `{"sub":"1","email":"bob@example.com","email_verified":1}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified 0":       {claims: `{"sub":"1","email":"bob@example.com","email_verified":0}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified 'yes'":   {claims: `{"sub":"1","email":"bob@example.com","email_verified":"yes"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified ' true'": {claims: `{"sub":"1","email":"bob@example.com","email_verified":" true"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/verified list":    {claims: `{"sub":"1","email":"bob@example.com","email_verified":[true]}`, wantCode: gatehouse.EUNAUTHORIZED},
		"ok/roles left out":     {claims: `{"sub":"1","email":"a@b.c","email_verified":true,"groups":["role:admin","proj:p:r","devs","devs"," x",7]}`, user: "a@b.c", groups: []string{"devs"}, dropped: 5},
		"ok/groups not a list":  {claims: `{"sub":"1","email":"a@b.c","email_verified":true,"groups":{"x":1}}`, user: "a@b.c", groups: []string{}, dropped: 1},
		"fail/no sub":           {claims: `{"email":"a@b.c"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/unverified email": {claims: `{"sub":"1","email":"a@b.c","email_verified":false}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/uppercase":        {claims: `{"sub":"1","email":"Alice@example.com"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/two @":            {claims: `{"sub":"1","email":"a@b@c"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/not a string":     {claims: `{"sub":"1","email":["a@b.c"]}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/sub not a name":   {claims: `{"sub":"00u1 2"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/space":            {claims: `{"sub":"1","email":" a@b.c"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/reserved name":    {claims: `{"sub":"reaper"}`, wantCode: gatehouse.EUNAUTHORIZED},
		"fail/reserved claim":   {claims: `{"sub":"1","preferred_username":"anonymous"}`, claim: "preferred_username", wantCode: gatehouse.EUNAUTHORIZED},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &m); err != nil {
				t.Fatal(err)
			}
			claim := tc.claim
			if claim == "" {
				claim = "email"
			}
			id, err := identityFromClaims(m, claim, "groups")
			if got := gatehouse.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("error %v, want code %q", err, tc.wantCode)
			}
			if err != nil {
				return
			}
			if id.Username != tc.user || !slices.Equal(id.Groups, tc.groups) || id.Dropped != tc.dropped {
				t.Errorf("got %+v, want user %q groups %v dropped %d", id, tc.user, tc.groups, tc.dropped)
			}
		})
	}
}

// FuzzIdentityFromClaims: whatever a provider's token holds, a username
// that comes out is a valid account name, and no group names a role.
func FuzzIdentityFromClaims(f *testing.F) {
	f.Add(`{"sub":"1","email":"alice@example.com","groups":["devs","role:admin"]}`, "email", "groups")
	f.Add(`{"sub":"carol","groups":"proj:a:b"}`, "preferred_username", "roles")
	f.Add(`{"sub":"x","email":"A@B","email_verified":false}`, "email", "groups")
	f.Add(`{"sub":"x","email":"a@b","email_verified":"True"}`, "email", "groups")
	f.Add(`{"sub":"x","email":"a@b","email_verified":"false"}`, "email", "groups")
	f.Add(`{"sub":"x","email":"a@b","email_verified":1}`, "email", "groups")
	f.Add(`{"sub":"x","email":"a@b"}`, "email", "groups")
	f.Fuzz(func(t *testing.T, raw, userClaim, groupsClaim string) {
		var m map[string]any
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		id, err := identityFromClaims(m, userClaim, groupsClaim)
		if err != nil {
			return
		}
		if !validSSOName(id.Username) {
			t.Fatalf("username %q is not a valid account name", id.Username)
		}
		// An email username only with email_verified true or "true".
		if email, ok := m["email"].(string); ok && userClaim == "email" {
			v := m["email_verified"]
			s, isString := v.(string)
			if v != true && !(isString && strings.ToLower(s) == "true") {
				t.Fatalf("email %q became the username with email_verified %#v", email, v)
			}
		}
		for _, g := range id.Groups {
			if policy.ReservedGroup(g) || checkGroupName(g) != nil {
				t.Fatalf("group %q came through", g)
			}
		}
		if !slices.IsSorted(id.Groups) || len(slices.Compact(slices.Clone(id.Groups))) != len(id.Groups) {
			t.Fatalf("groups %v not sorted and unique", id.Groups)
		}
	})
}

func testSealer() sealer {
	return sealer{seal.Sealer{Secret: []byte("client-secret-for-the-fuzzer-1234"), Rand: rand.Reader}}
}

func TestStateSeal(t *testing.T) {
	k := testSealer()
	now := time.Now()
	st := loginState{State: "s", Nonce: "n", Verifier: "v", Expires: now.Add(time.Minute).UnixMilli(), CLIPort: 4000, CLIKey: "k"}
	v, err := k.sealState(st)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := k.openState(v, now); !ok || got != st {
		t.Fatalf("openState = %+v, %t", got, ok)
	}
	if _, ok := k.openState(v, now.Add(2*time.Minute)); ok {
		t.Error("an expired state opened")
	}
	other := sealer{seal.Sealer{Secret: []byte("another-client-secret-0000000000"), Rand: rand.Reader}}
	if _, ok := other.openState(v, now); ok {
		t.Error("a state opened under another client secret")
	}
	// A refresh token sealed for one account does not open as another's
	// nor as a state.
	rt, err := k.sealRefresh("alice@example.com", "https://idp", "refresh-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.openRefresh("bob@example.com", "https://idp", rt); err == nil {
		t.Error("alice's refresh token opened for bob")
	}
	if got, err := k.openRefresh("alice@example.com", "https://idp", rt); err != nil || got != "refresh-token" {
		t.Errorf("openRefresh = %q, %v", got, err)
	}
	if _, ok := k.openState(sealEncoding.EncodeToString(rt), now); ok {
		t.Error("a sealed refresh token opened as a state")
	}
	// A CLI login's confirmation opens only as one, and only in time.
	pd := cliPending{ID: "id-1", Account: "alice@example.com", Issuer: "https://idp", Subject: "u1", CLIPort: 4000, CLIKey: "k", Expires: now.Add(time.Minute).UnixMilli()}
	pv, err := k.sealPending(pd)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := k.openPending(pv, now); !ok || got != pd {
		t.Errorf("openPending = %+v, %t", got, ok)
	}
	if _, ok := k.openPending(pv, now.Add(2*time.Minute)); ok {
		t.Error("an expired confirmation opened")
	}
	// One without an id (sealed before confirmations had one) could not
	// be recorded as answered: it does not open.
	noID := pd
	noID.ID = ""
	if nv, err := k.sealPending(noID); err != nil {
		t.Fatal(err)
	} else if _, ok := k.openPending(nv, now); ok {
		t.Error("a confirmation without an id opened")
	}
	if _, ok := k.openPending(v, now); ok {
		t.Error("a state opened as a confirmation")
	}
	if _, ok := k.openState(pv, now); ok {
		t.Error("a confirmation opened as a state")
	}
}

// FuzzOpenState: the state cookie opener never accepts what it did not
// seal, and never panics.
func FuzzOpenState(f *testing.F) {
	k := testSealer()
	v, _ := k.sealState(loginState{State: "s", Nonce: "n", Verifier: "v", Expires: time.Now().Add(time.Hour).UnixMilli()})
	f.Add(v)
	f.Add("")
	f.Add(strings.Repeat("A", 100))
	f.Fuzz(func(t *testing.T, v string) {
		st, ok := k.openState(v, time.Now())
		if ok && (st.State == "" || st.Nonce == "" || st.Verifier == "") {
			t.Fatalf("opened an incomplete state %+v", st)
		}
	})
}

// A device login's handle opens only as one, only in time, and only
// under the client secret it was sealed with.
func TestDeviceSeal(t *testing.T) {
	k := testSealer()
	now := time.Now()
	d := deviceState{DeviceCode: "dc", Interval: 5, Expires: now.Add(time.Minute).UnixMilli()}
	h, err := k.sealDevice(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := k.openDevice(h, now); !ok || got != d {
		t.Fatalf("openDevice = %+v, %t", got, ok)
	}
	if _, ok := k.openDevice(h, now.Add(time.Minute)); ok {
		t.Error("an expired handle opened")
	}
	other := sealer{seal.Sealer{Secret: []byte("another-client-secret-0000000000"), Rand: rand.Reader}}
	if _, ok := other.openDevice(h, now); ok {
		t.Error("a handle opened under another client secret")
	}
	st, _ := k.sealState(loginState{State: "s", Nonce: "n", Verifier: "v", Expires: now.Add(time.Minute).UnixMilli()})
	if _, ok := k.openDevice(st, now); ok {
		t.Error("a state opened as a handle")
	}
	if _, ok := k.openState(h, now); ok {
		t.Error("a handle opened as a state")
	}
	if _, ok := k.openPending(h, now); ok {
		t.Error("a handle opened as a CLI confirmation")
	}
}

// What the provider says to show the user reaches a terminal: only
// printable ASCII, and only a web address without credentials.
func TestDeviceAnswerShownAsIs(t *testing.T) {
	for code, want := range map[string]bool{
		"BCDF-GHJK": true, "123-456-789": true, "": false, "AB CD": false,
		"AB\x1b[2JCD": false, "ÄBCD": false, strings.Repeat("A", 65): false,
	} {
		if got := printableCode(code); got != want {
			t.Errorf("printableCode(%q) = %t, want %t", code, got, want)
		}
	}
	for u, want := range map[string]bool{
		"https://idp.example/device": true, "http://127.0.0.1:9/device?user_code=X": true,
		"": false, "javascript:alert(1)": false, "https://user:pw@idp.example/device": false,
		"https://idp.example/\x1b[2J": false, "/device": false, "https://idp.example/a b": false,
	} {
		if got := webAddress(u); got != want {
			t.Errorf("webAddress(%q) = %t, want %t", u, got, want)
		}
	}
}

// FuzzOpenDevice: the handle opener never accepts what it did not seal,
// and never panics.
func FuzzOpenDevice(f *testing.F) {
	k := testSealer()
	h, _ := k.sealDevice(deviceState{DeviceCode: "dc", Interval: 5, Expires: time.Now().Add(time.Hour).UnixMilli()})
	f.Add(h)
	f.Add("")
	f.Add(strings.Repeat("A", 100))
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := k.openDevice(v, time.Now())
		if ok && (d.DeviceCode == "" || d.Interval < 1) {
			t.Fatalf("opened an incomplete handle %+v", d)
		}
		// The only handles ever sealed with this key carry dc and 5
		// (each fuzzing process seals its own seed, so the bytes differ).
		if ok && (d.DeviceCode != "dc" || d.Interval != 5) {
			t.Fatalf("opened a handle it did not seal: %q -> %+v", v, d)
		}
	})
}

// providerFailure keeps of an error of the provider's endpoints only the
// HTTP status and the OAuth error code, or the transport's failure and a
// context's end: never the answer's body or error_description, nor the
// text of any other error.
func TestSSOProviderFailureKeepsNoBody(t *testing.T) {
	const secret = "refresh-token-quoted-back"
	resp := &http.Response{StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway"}
	transport := &url.Error{Op: "Post", URL: "https://idp.example/token", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&oauth2.RetrieveError{Response: resp, Body: []byte("request was: refresh_token=" + secret)},
			"refresh: the identity provider answered HTTP 502"},
		{&oauth2.RetrieveError{Response: resp, Body: []byte(`{"error":"invalid_grant"}`), ErrorCode: "invalid_grant", ErrorDescription: "unknown token " + secret},
			"refresh: the identity provider answered HTTP 502 (invalid_grant)"},
		{&oauth2.RetrieveError{Response: resp, ErrorCode: secret + " ?"}, "refresh: the identity provider answered HTTP 502 (an unknown error)"},
		{fmt.Errorf("oauth2: %w", transport), `refresh: Post "https://idp.example/token": connection refused`},
		{fmt.Errorf("quoting %s: %w", secret, context.DeadlineExceeded), "refresh: context deadline exceeded"},
		{errors.New("502 Bad Gateway: request was: access_token=" + secret), "refresh: the identity provider's answer was not usable"},
	} {
		got := providerFailure("refresh", tc.err)
		if !strings.HasPrefix(got.Error(), tc.want) || strings.Contains(got.Error(), secret) {
			t.Errorf("providerFailure(%q) = %q, want %q and no secret", tc.err, got, tc.want)
		}
		if errors.Is(tc.err, context.DeadlineExceeded) != errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("providerFailure(%q) lost or gained the context's deadline", tc.err)
		}
	}
}
