package server

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestExpiryChoices(t *testing.T) {
	for _, tc := range []struct {
		max         time.Duration
		wantLabels  string
		wantDefault string
	}{
		{720 * time.Hour, "1 hour, 12 hours, 1 day, 7 days, 30 days", "12h0m0s"},
		{7 * 24 * time.Hour, "1 hour, 12 hours, 1 day, 7 days", "12h0m0s"},
		{6 * time.Hour, "1 hour", "1h0m0s"},
		{30 * time.Minute, "30 minutes (server maximum)", "30m0s"},
	} {
		choices := expiryChoices(tc.max)
		var labels []string
		for _, c := range choices {
			labels = append(labels, c.Label)
		}
		if got := strings.Join(labels, ", "); got != tc.wantLabels {
			t.Errorf("max %v: choices %q, want %q", tc.max, got, tc.wantLabels)
		}
		if got := defaultChoice(choices); got != tc.wantDefault {
			t.Errorf("max %v: default %q, want %q", tc.max, got, tc.wantDefault)
		}
	}
}

func TestParseTokenForm(t *testing.T) {
	secs := func(d time.Duration) int64 { return int64(d / time.Second) }
	for _, tc := range []struct {
		name     string
		form     string
		scopes   bool
		expires  int64
		nScopes  int
		problems int
	}{
		{"defaults", "name=ci", true, secs(12 * time.Hour), 0, 0},
		{"preset", "name=ci&expiration=168h0m0s", true, secs(168 * time.Hour), 0, 0},
		{"custom", "name=ci&expiration=custom&custom_hours=5", true, secs(5 * time.Hour), 0, 0},
		{"custom zero", "name=ci&expiration=custom&custom_hours=0", true, 0, 0, 1},
		{"not offered", "name=ci&expiration=1000h0m0s", true, 0, 0, 1},
		{"no name", "name=+&expiration=1h0m0s", true, secs(time.Hour), 0, 1},
		{"name too long", "name=" + strings.Repeat("x", 101), true, secs(12 * time.Hour), 0, 1},
		{"blank rows skipped", "name=ci&scope_resource=&scope_action=&scope_object=&scope_resource=applications&scope_action=get&scope_object=a/*", true, secs(12 * time.Hour), 1, 0},
		{"half row", "name=ci&scope_resource=applications&scope_action=&scope_object=x", true, secs(12 * time.Hour), 0, 1},
		{"role tokens take no scopes", "name=ci&scope_resource=applications&scope_action=get&scope_object=x", false, secs(12 * time.Hour), 0, 1},
		{"too many rows", "name=ci" + strings.Repeat("&scope_resource=a&scope_action=b&scope_object=c", 21), true, secs(12 * time.Hour), 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.form)
			if err != nil {
				t.Fatal(err)
			}
			_, req, problems := parseTokenForm(v, 720*time.Hour, tc.scopes)
			if len(problems) != tc.problems {
				t.Errorf("problems %q, want %d", problems, tc.problems)
			}
			var got int64
			if req.ExpiresIn != nil {
				got = *req.ExpiresIn
			}
			if got != tc.expires {
				t.Errorf("expiresIn %d, want %d", got, tc.expires)
			}
			if len(req.Scopes) != tc.nScopes {
				t.Errorf("scopes %v, want %d", req.Scopes, tc.nScopes)
			}
		})
	}
}

func TestParseAuditQuery(t *testing.T) {
	for _, tc := range []struct {
		q     string
		ok    bool
		since time.Time
	}{
		{"", true, time.Time{}},
		{"account=alice&type=token.created&decision=deny", true, time.Time{}},
		{"since=2026-01-02T03:04", true, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		{"since=2026-01-02T03:04:05Z", true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"since=yesterday", false, time.Time{}},
		{"decision=maybe", false, time.Time{}},
		{"type=secret.leaked", false, time.Time{}},
	} {
		v, _ := url.ParseQuery(tc.q)
		_, f, err := parseAuditQuery(v)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok %v", tc.q, err, tc.ok)
		}
		if tc.ok && !f.Since.Equal(tc.since) {
			t.Errorf("%q: since %v, want %v", tc.q, f.Since, tc.since)
		}
	}
}

func FuzzParseTokenForm(f *testing.F) {
	f.Add("name=ci&expiration=12h0m0s", int64(720))
	f.Add("name=ci&expiration=custom&custom_hours=9999999999999999999", int64(24))
	f.Add("name=%ff&scope_resource=a&scope_action=&scope_object=c", int64(1))
	f.Add("expiration=custom&custom_hours=-1", int64(0))
	f.Fuzz(func(t *testing.T, form string, maxHours int64) {
		v, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		maxLife := time.Duration(maxHours%100000) * time.Hour
		if maxLife <= 0 {
			maxLife = 30 * time.Minute
		}
		f, req, problems := parseTokenForm(v, maxLife, true)
		if len(problems) > 0 {
			return
		}
		if req.ExpiresIn == nil || *req.ExpiresIn < 1 || time.Duration(*req.ExpiresIn)*time.Second > maxLife {
			t.Fatalf("accepted expiresIn %v outside (0, %v]", req.ExpiresIn, maxLife)
		}
		if req.Name == "" || req.Name != f.Name || len(req.Scopes) > maxScopeRows {
			t.Fatalf("accepted %+v", req)
		}
		for _, s := range req.Scopes {
			if s.Resource == "" || s.Action == "" || s.Object == "" {
				t.Fatalf("accepted an incomplete scope %+v", s)
			}
		}
	})
}

func FuzzParseBulkRevokeForm(f *testing.F) {
	f.Add("account=alice&kind=api")
	f.Add("issued_before=2026-01-02T03:04")
	f.Add("issued_before=2026-01-02T03:04:05%2B02:00")
	f.Add("issued_before=not+a+time&project=p&role=r")
	f.Fuzz(func(t *testing.T, form string) {
		v, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		f, req, err := parseBulkRevokeForm(v)
		if err != nil {
			return
		}
		if req.Account != f.Account || string(req.Kind) != f.Kind {
			t.Fatalf("form %+v gave request %+v", f, req)
		}
		if !req.IssuedBefore.IsZero() {
			// The form round-trips: the confirmation posts it back.
			again, err := parseIssuedBefore(f.IssuedBefore)
			if err != nil || !again.Equal(req.IssuedBefore) {
				t.Fatalf("issued before %v re-reads as %v, %v", req.IssuedBefore, again, err)
			}
		}
	})
}

func FuzzParseAuditQuery(f *testing.F) {
	f.Add("account=alice&decision=deny&type=request")
	f.Add("actor=admin&account=alice")
	f.Add("since=2026-01-02T03:04&until=2026-01-03T00:00:00Z&cursor=ZTE")
	f.Add("decision=%00")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, f, err := parseAuditQuery(v)
		if err != nil {
			return
		}
		if f.Decision != "" && f.Decision != "allow" && f.Decision != "deny" {
			t.Fatalf("accepted decision %q", f.Decision)
		}
		if f.Limit != 50 || f.Actor != q.Actor || f.Account != q.Account {
			t.Fatalf("filter %+v from %+v", f, q)
		}
		if got := q.values().Get("cursor"); got != "" {
			t.Fatalf("links carry the cursor %q", got)
		}
	})
}
