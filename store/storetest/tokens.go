package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func testTokens(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	tests := []gatehouse.Token{
		token("api"),
		token("session", func(k *gatehouse.Token) {
			k.Kind, k.Scopes = gatehouse.KindSession, []gatehouse.Scope{}
			k.LastUsedAt, k.LastUsedFrom = at(time.Hour), "192.0.2.7"
		}),
		token("project", func(k *gatehouse.Token) {
			k.Kind, k.Account, k.Project, k.Role = gatehouse.KindProject, "", "web", "deployer"
			k.Scopes = []gatehouse.Scope{}
		}),
		token("never-expires", func(k *gatehouse.Token) { k.ExpiresAt = time.Time{} }),
		token("many-scopes", func(k *gatehouse.Token) {
			k.Scopes = []gatehouse.Scope{
				{Resource: "applications", Action: "*", Object: "web/*"},
				{Resource: "projects", Action: "get", Object: "web"},
				{Resource: "logs", Action: "get", Object: "*/*"},
			}
		}),
	}
	for _, want := range tests {
		t.Run(want.ID, func(t *testing.T) {
			inTx(t, s, func(tx gatehouse.Tx) error { return tx.CreateToken(ctx, want) })
			got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, want.ID) })
			equal(t, "GetToken", got, want)
		})
	}
}

// filterTokens is the fixture of the TokenFilter tests, oldest first.
func filterTokens() []gatehouse.Token {
	return []gatehouse.Token{
		token("s1", func(k *gatehouse.Token) {
			k.Kind, k.IssuedAt, k.ExpiresAt = gatehouse.KindSession, at(1*time.Hour), at(13*time.Hour)
		}),
		token("a1", func(k *gatehouse.Token) { k.IssuedAt, k.ExpiresAt = at(2*time.Hour), at(3*time.Hour) }),
		token("a2", func(k *gatehouse.Token) { k.IssuedAt, k.ExpiresAt = at(3*time.Hour), time.Time{} }),
		token("b1", func(k *gatehouse.Token) {
			k.Account, k.CreatedBy, k.IssuedAt, k.ExpiresAt = "bob", "bob", at(4*time.Hour), at(5*time.Hour)
		}),
		token("p1", func(k *gatehouse.Token) {
			k.Kind, k.Account, k.Project, k.Role = gatehouse.KindProject, "", "web", "deployer"
			k.IssuedAt, k.ExpiresAt = at(5*time.Hour), at(6*time.Hour)
		}),
		token("p2", func(k *gatehouse.Token) {
			k.Kind, k.Account, k.Project, k.Role = gatehouse.KindProject, "", "web", "viewer"
			k.IssuedAt, k.ExpiresAt = at(6*time.Hour), time.Time{}
		}),
		token("p3", func(k *gatehouse.Token) {
			k.Kind, k.Account, k.Project, k.Role = gatehouse.KindProject, "", "api", "deployer"
			k.IssuedAt, k.ExpiresAt = at(7*time.Hour), at(8*time.Hour)
		}),
	}
}

// tokenFilterTests lists filters and the ids they select, newest first.
var tokenFilterTests = []struct {
	name string
	f    gatehouse.TokenFilter
	want []string
}{
	{"ok/empty filter matches all", gatehouse.TokenFilter{}, []string{"p3", "p2", "p1", "b1", "a2", "a1", "s1"}},
	{"ok/id", gatehouse.TokenFilter{ID: "a1"}, []string{"a1"}},
	{"ok/unknown id", gatehouse.TokenFilter{ID: "nope"}, []string{}},
	{"ok/account", gatehouse.TokenFilter{Account: "alice"}, []string{"a2", "a1", "s1"}},
	{"ok/unknown account", gatehouse.TokenFilter{Account: "mallory"}, []string{}},
	{"ok/project", gatehouse.TokenFilter{Project: "web"}, []string{"p2", "p1"}},
	{"ok/role in any project", gatehouse.TokenFilter{Role: "deployer"}, []string{"p3", "p1"}},
	{"ok/project role", gatehouse.TokenFilter{Project: "web", Role: "deployer"}, []string{"p1"}},
	{"ok/kind api", gatehouse.TokenFilter{Kind: gatehouse.KindAPI}, []string{"b1", "a2", "a1"}},
	{"ok/kind project", gatehouse.TokenFilter{Kind: gatehouse.KindProject}, []string{"p3", "p2", "p1"}},
	{"ok/issued before is strict", gatehouse.TokenFilter{IssuedBefore: at(3 * time.Hour)}, []string{"a1", "s1"}},
	{"ok/expired before is inclusive and skips non-expiring", gatehouse.TokenFilter{ExpiredBefore: at(5 * time.Hour)}, []string{"b1", "a1"}},
	{"ok/expired before far future", gatehouse.TokenFilter{ExpiredBefore: at(1000 * time.Hour)}, []string{"p3", "p1", "b1", "a1", "s1"}},
	{"ok/expired before all of them", gatehouse.TokenFilter{ExpiredBefore: at(time.Hour)}, []string{}},
	{"ok/except id", gatehouse.TokenFilter{ExceptID: "a2"}, []string{"p3", "p2", "p1", "b1", "a1", "s1"}},
	{"ok/account except id", gatehouse.TokenFilter{Account: "alice", ExceptID: "a1"}, []string{"a2", "s1"}},
	{"ok/sessions except the caller's", gatehouse.TokenFilter{Account: "alice", Kind: gatehouse.KindSession, ExceptID: "s1"}, []string{}},
	{"ok/account kind issued before", gatehouse.TokenFilter{Account: "alice", Kind: gatehouse.KindAPI, IssuedBefore: at(3 * time.Hour)}, []string{"a1"}},
	{"ok/project expired before", gatehouse.TokenFilter{Project: "web", ExpiredBefore: at(100 * time.Hour)}, []string{"p1"}},
	{"ok/id and except the same id", gatehouse.TokenFilter{ID: "a1", ExceptID: "a1"}, []string{}},
	{"ok/fields that contradict", gatehouse.TokenFilter{Account: "bob", Kind: gatehouse.KindSession}, []string{}},
}

func createAll(t *testing.T, s gatehouse.Store, ts []gatehouse.Token) {
	t.Helper()
	inTx(t, s, func(tx gatehouse.Tx) error {
		for _, k := range ts {
			if err := tx.CreateToken(t.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
}

func testTokenFilterList(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	all := filterTokens()
	createAll(t, s, all)
	byID := map[string]gatehouse.Token{}
	for _, k := range all {
		byID[k.ID] = k
	}
	for _, tc := range tokenFilterTests {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) { return tx.ListTokens(t.Context(), tc.f) })
			if got == nil {
				t.Fatalf("ListTokens(%+v): got nil, want a non-nil slice", tc.f)
			}
			equal(t, fmt.Sprintf("ListTokens(%+v) ids", tc.f), ids(got), tc.want)
			for _, k := range got {
				equal(t, "listed token "+k.ID, k, byID[k.ID])
			}
		})
	}
}

func testTokenFilterDelete(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	all := filterTokens()
	for _, tc := range tokenFilterTests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			createAll(t, s, all)
			var gone []gatehouse.Token
			inTx(t, s, func(tx gatehouse.Tx) (err error) {
				gone, err = tx.DeleteTokens(ctx, tc.f)
				return err
			})
			// DeleteTokens returns the deleted tokens themselves, not just ids.
			for _, k := range gone {
				i := slices.IndexFunc(all, func(x gatehouse.Token) bool { return x.ID == k.ID })
				if i < 0 {
					t.Fatalf("DeleteTokens returned unknown token %q", k.ID)
				}
				equal(t, "deleted token "+k.ID, k, all[i])
			}
			gotIDs := ids(gone)
			slices.Sort(gotIDs)
			wantIDs := slices.Clone(tc.want)
			slices.Sort(wantIDs)
			equal(t, fmt.Sprintf("DeleteTokens(%+v) ids", tc.f), gotIDs, wantIDs)

			left := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
				return tx.ListTokens(ctx, gatehouse.TokenFilter{})
			})
			var wantLeft []string
			for _, id := range tokenFilterTests[0].want {
				if !slices.Contains(tc.want, id) {
					wantLeft = append(wantLeft, id)
				}
			}
			equal(t, "tokens left", ids(left), append([]string{}, wantLeft...))
		})
	}
}

func testSetTokenExpiry(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	k := token("t1", func(k *gatehouse.Token) { k.ExpiresAt = time.Time{} })
	createAll(t, s, []gatehouse.Token{k, token("t2")})

	tests := []struct {
		name   string
		expiry time.Time
	}{
		{"ok/set on a non-expiring token", at(30 * time.Minute)},
		{"ok/move later", at(90 * time.Minute)},
		{"ok/back to never", time.Time{}},
		{"ok/move earlier", at(time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inTx(t, s, func(tx gatehouse.Tx) error { return tx.SetTokenExpiry(ctx, "t1", tc.expiry) })
			got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, "t1") })
			want := k
			want.ExpiresAt = tc.expiry
			equal(t, "GetToken", got, want)
		})
	}
	// The other token is untouched.
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, "t2") })
	equal(t, "other token", got, token("t2"))
	// The new expiry is what ExpiredBefore sees.
	expired := read(t, s, func(tx gatehouse.Tx) ([]gatehouse.Token, error) {
		return tx.ListTokens(ctx, gatehouse.TokenFilter{ExpiredBefore: at(time.Minute)})
	})
	equal(t, "expired after SetTokenExpiry", ids(expired), []string{"t1"})
}

func testForEachToken(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	seen := 0
	if err := s.ForEachToken(ctx, func(gatehouse.Token) error { seen++; return nil }); err != nil || seen != 0 {
		t.Errorf("ForEachToken on an empty store: got %d calls and %v, want 0 and nil", seen, err)
	}

	const n = 3000
	want := map[string]gatehouse.Token{}
	inTx(t, s, func(tx gatehouse.Tx) error {
		for i := range n {
			k := token(fmt.Sprintf("tok-%05d", i), func(k *gatehouse.Token) {
				k.IssuedAt = at(time.Duration(i) * time.Second)
				k.Account = fmt.Sprintf("user%d", i%7)
			})
			want[k.ID] = k
			if err := tx.CreateToken(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	got := map[string]int{}
	err := s.ForEachToken(ctx, func(k gatehouse.Token) error {
		got[k.ID]++
		if w, ok := want[k.ID]; ok && got[k.ID] == 1 {
			equal(t, "streamed token "+k.ID, k, w)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachToken: %v", err)
	}
	if len(got) != n {
		t.Errorf("ForEachToken: got %d distinct tokens, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("ForEachToken: token %s seen %d times, want once", id, c)
		}
		if _, ok := want[id]; !ok {
			t.Errorf("ForEachToken: unknown token %s", id)
		}
	}
}

func testForEachTokenStops(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	var all []gatehouse.Token
	for i := range 20 {
		all = append(all, token(fmt.Sprintf("t%02d", i)))
	}
	createAll(t, s, all)
	stop := errors.New("stop here")
	calls := 0
	err := s.ForEachToken(t.Context(), func(gatehouse.Token) error {
		calls++
		if calls == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("ForEachToken: got error %v, want the callback's error", err)
	}
	if calls != 5 {
		t.Errorf("ForEachToken: got %d calls, want 5 (stop at the first error)", calls)
	}
}

func testTouchTokens(t *testing.T, open func(t *testing.T) gatehouse.Store) {
	s := open(t)
	ctx := t.Context()
	t1, t2 := token("t1"), token("t2")
	createAll(t, s, []gatehouse.Token{t1, t2})

	steps := []struct {
		name     string
		uses     []gatehouse.TokenUse
		wantAt   time.Time
		wantFrom string
	}{
		{"ok/first use", []gatehouse.TokenUse{{ID: "t1", At: at(10 * time.Minute), From: "192.0.2.1"}}, at(10 * time.Minute), "192.0.2.1"},
		{"ok/later use moves forward", []gatehouse.TokenUse{{ID: "t1", At: at(20 * time.Minute), From: "192.0.2.2"}}, at(20 * time.Minute), "192.0.2.2"},
		{"ok/earlier use is ignored", []gatehouse.TokenUse{{ID: "t1", At: at(15 * time.Minute), From: "192.0.2.3"}}, at(20 * time.Minute), "192.0.2.2"},
		{"ok/unknown ids are ignored", []gatehouse.TokenUse{
			{ID: "revoked-meanwhile", At: at(30 * time.Minute), From: "192.0.2.9"},
			{ID: "t1", At: at(30 * time.Minute), From: "192.0.2.4"},
		}, at(30 * time.Minute), "192.0.2.4"},
		{"ok/batch out of order keeps the newest", []gatehouse.TokenUse{
			{ID: "t1", At: at(50 * time.Minute), From: "192.0.2.5"},
			{ID: "t1", At: at(40 * time.Minute), From: "192.0.2.6"},
		}, at(50 * time.Minute), "192.0.2.5"},
		{"ok/batch in order keeps the newest", []gatehouse.TokenUse{
			{ID: "t1", At: at(60 * time.Minute), From: "192.0.2.7"},
			{ID: "t1", At: at(70 * time.Minute), From: "192.0.2.8"},
		}, at(70 * time.Minute), "192.0.2.8"},
		{"ok/empty batch", nil, at(70 * time.Minute), "192.0.2.8"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.TouchTokens(ctx, st.uses); err != nil {
				t.Fatalf("TouchTokens: %v", err)
			}
			got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, "t1") })
			want := t1
			want.LastUsedAt, want.LastUsedFrom = st.wantAt, st.wantFrom
			equal(t, "touched token", got, want)
		})
	}
	// Only lastUsedAt/lastUsedFrom change, and only on the touched token.
	got := read(t, s, func(tx gatehouse.Tx) (gatehouse.Token, error) { return tx.GetToken(ctx, "t2") })
	equal(t, "untouched token", got, t2)
	n := 0
	if err := s.ForEachToken(ctx, func(gatehouse.Token) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("after TouchTokens with an unknown id: got %d tokens and %v, want 2 and nil (no row created)", n, err)
	}
}
