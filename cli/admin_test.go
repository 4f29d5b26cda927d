package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// revokeAPI answers bulk revocations with two ids and records the bodies.
func revokeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	return newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/admin/revoke": func(w http.ResponseWriter, r *http.Request) {
			var in gatehouse.BulkRevoke
			if err := jsonDecoder(r).Decode(&in); err != nil {
				apiError(w, http.StatusBadRequest, gatehouse.EINVALID, err.Error())
				return
			}
			writeJSON(w, gatehouse.BulkRevokeResult{Count: 2, IDs: []string{tokenID1, tokenID2}, DryRun: in.DryRun})
		},
	})
}

func TestAdminRevoke(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stdin     string
		terminal  bool
		want      []gatehouse.BulkRevoke // bodies sent, in order
		wantErr   string
		golden    string
		checkJSON bool
	}{
		{
			name:   "dry run",
			args:   []string{"--account", "ci", "--dry-run"},
			want:   []gatehouse.BulkRevoke{{Account: "ci", DryRun: true}},
			golden: "admin_revoke_dry_run",
		},
		{
			name:   "yes",
			args:   []string{"--project", "shop", "--role", "ci", "--kind", "project", "--yes"},
			want:   []gatehouse.BulkRevoke{{Project: "shop", Role: "ci", Kind: gatehouse.KindProject}},
			golden: "admin_revoke",
		},
		{
			name:      "json output",
			args:      []string{"--issued-before", "2025-03-01", "--yes", "-o", "json"},
			want:      []gatehouse.BulkRevoke{{IssuedBefore: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}},
			checkJSON: true,
		},
		{
			name:     "confirmed after a dry-run count",
			args:     []string{"--account", "ci"},
			terminal: true,
			stdin:    "yes\n",
			want:     []gatehouse.BulkRevoke{{Account: "ci", DryRun: true}, {Account: "ci"}},
		},
		{
			name:     "declined",
			args:     []string{"--account", "ci"},
			terminal: true,
			stdin:    "\n",
			want:     []gatehouse.BulkRevoke{{Account: "ci", DryRun: true}},
			wantErr:  "aborted",
		},
		{
			name:    "no terminal, no --yes",
			args:    []string{"--account", "ci"},
			wantErr: "standard input is not a terminal; pass --yes",
		},
		{name: "no filter", args: []string{"--yes"}, wantErr: "give at least one filter"},
		{name: "role without project", args: []string{"--role", "ci", "--yes"}, wantErr: "--role needs --project"},
		{name: "bad kind", args: []string{"--kind", "jwt", "--yes"}, wantErr: "--kind must be session, api or project"},
		{name: "bad time", args: []string{"--issued-before", "yesterday", "--yes"}, wantErr: `--issued-before: invalid time "yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := revokeAPI(t)
			r := authed(t, api)
			r.stdin = tt.stdin
			if tt.terminal {
				r.terminal = &fakeTerminal{}
			}
			res := r.run(t, append([]string{"admin", "revoke"}, tt.args...)...)
			if tt.wantErr != "" {
				mustFail(t, res, tt.wantErr)
			} else {
				mustSucceed(t, res)
			}
			var got []gatehouse.BulkRevoke
			for _, s := range api.requests() {
				got = append(got, decodeBody[gatehouse.BulkRevoke](t, s))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("bodies sent %+v, want %+v", got, tt.want)
			}
			if tt.terminal && !strings.Contains(res.stderr, "Revoke 2 tokens (account ci)? [y/N] ") {
				t.Errorf("stderr = %q, want the question with the count", res.stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, res.stdout)
			}
			if tt.checkJSON {
				var out gatehouse.BulkRevokeResult
				if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
					t.Fatalf("-o json: %v\n%s", err, res.stdout)
				}
				if want := (gatehouse.BulkRevokeResult{Count: 2, IDs: []string{tokenID1, tokenID2}}); !reflect.DeepEqual(out, want) {
					t.Errorf("-o json = %+v, want %+v", out, want)
				}
			}
		})
	}
}

func TestAuditList(t *testing.T) {
	events := []gatehouse.Event{
		{ID: 10, Time: testNow.Add(-30 * time.Second), Type: gatehouse.EventRequest, Actor: "ci", TokenID: tokenID1, TokenKind: gatehouse.KindAPI, Method: "GET", Path: "/api/v1/applications/web", Resource: "applications", Action: "get", Object: "shop/web", Decision: "allow", Via: gatehouse.ViaPolicy, Account: "ci", Status: 200, Count: 37},
		{ID: 9, Time: testNow.Add(-time.Minute), Type: gatehouse.EventRequest, Actor: "ci", TokenID: tokenID1, TokenKind: gatehouse.KindAPI, Method: "POST", Path: "/api/v1/applications/web/sync", Resource: "applications", Action: "sync", Object: "shop/web", Decision: "deny", Via: gatehouse.ViaScope, Account: "ci", Status: 403},
		{ID: 8, Time: testNow.Add(-2 * time.Minute), Type: gatehouse.EventTokenCreated, Actor: "admin", Account: "ci", TokenID: tokenID1, TokenKind: gatehouse.KindAPI, Resource: "accounts", Object: "ci"},
		{ID: 7, Time: testNow.Add(-3 * time.Minute), Type: gatehouse.EventLoginFailed, Actor: "mallory"},
	}
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/audit": func(w http.ResponseWriter, r *http.Request) {
			next := ""
			if r.URL.Query().Get("cursor") == "" {
				next = "c2"
			}
			writeJSON(w, gatehouse.List[gatehouse.Event]{Items: events, NextCursor: next})
		},
	})
	r := authed(t, api)

	res := r.run(t, "audit", "list")
	mustSucceed(t, res)
	golden(t, "audit_list", res.stdout)
	if want := "more events: add --cursor c2\n"; res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
	if got, want := api.last(t, "GET", "/api/v1/audit").query, "limit=100"; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}

	res = r.run(t, "audit", "list", "--account", "ci", "--token-id", tokenID1, "--type", "request", "--decision", "deny",
		"--since", "1h", "--until", "2025-03-04T11:59:30Z", "--limit", "10", "--cursor", "c2")
	mustSucceed(t, res)
	if res.stderr != "" {
		t.Errorf("stderr = %q, want nothing on the last page", res.stderr)
	}
	want := "account=ci&cursor=c2&decision=deny&limit=10&since=2025-03-04T11%3A00%3A00Z&tokenId=" + tokenID1 + "&type=request&until=2025-03-04T11%3A59%3A30Z"
	if got := api.last(t, "GET", "/api/v1/audit").query; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}

	res = r.run(t, "audit", "list", "-o", "json")
	mustSucceed(t, res)
	var got []gatehouse.Event
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("-o json: %v", err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Errorf("-o json = %+v, want %+v", got, events)
	}
}

func TestTokensCountsInWords(t *testing.T) {
	for n, want := range map[int]string{0: "0 tokens", 1: "1 token", 2: "2 tokens", 40: "40 tokens"} {
		if got := tokens(n); got != want {
			t.Errorf("tokens(%d) = %q, want %q", n, got, want)
		}
	}
}
