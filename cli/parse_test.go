package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "30m", want: 30 * time.Minute},
		{in: "12h", want: 12 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "90s", want: 90 * time.Second},
		{in: "", wantErr: "invalid duration"},
		{in: "12", wantErr: "invalid duration"},
		{in: "-1h", wantErr: "invalid duration"},
		{in: "+1h", wantErr: "invalid duration"},
		{in: "d", wantErr: "invalid duration"},
		{in: "1.5d", wantErr: "invalid duration"},
		{in: "1d-1h", wantErr: "invalid duration"},
		{in: "7days", wantErr: "invalid duration"},
		{in: "0s", wantErr: "use 0"},
		{in: "0d", wantErr: "use 0"},
		{in: "1500ms", wantErr: "whole number of seconds"},
		{in: "106752d", wantErr: "too long"},
		{in: "106751d24h", wantErr: "too long"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "30m", "7d", "1d12h", "-1h", "1500ms", "9999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 || d%time.Second != 0 {
			t.Fatalf("parseDuration(%q) = %v: negative or not whole seconds", s, d)
		}
		if d == 0 && s != "0" {
			t.Fatalf("parseDuration(%q) = 0, but only \"0\" may mean never", s)
		}
		if n := *seconds(d); n < 0 || time.Duration(n)*time.Second != d {
			t.Fatalf("seconds(%v) = %d", d, n)
		}
	})
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in      string
		want    gatehouse.Scope
		wantErr bool
	}{
		{in: "applications:sync:shop/*", want: gatehouse.Scope{Resource: "applications", Action: "sync", Object: "shop/*"}},
		{in: "*:get:*", want: gatehouse.Scope{Resource: "*", Action: "get", Object: "*"}},
		{in: "applications:get:shop/web:blue", want: gatehouse.Scope{Resource: "applications", Action: "get", Object: "shop/web:blue"}},
		{in: "applications:sync", wantErr: true},
		{in: "applications", wantErr: true},
		{in: ":get:x", wantErr: true},
		{in: "a::x", wantErr: true},
		{in: "a:b:", wantErr: true},
		{in: "a:b:x,y", wantErr: true},
		{in: "a: b:x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseScope(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseScope(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseScope(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"applications:sync:shop/*", "a:b", "a:b:c:d", ":::", "a, b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := parseScope(s)
		if err != nil {
			return
		}
		if sc.Resource+":"+sc.Action+":"+sc.Object != s {
			t.Fatalf("parseScope(%q) = %+v does not join back to the input", s, sc)
		}
		for _, p := range []string{sc.Resource, sc.Action, sc.Object} {
			if p == "" || strings.ContainsAny(p, ",\n\r\t") || strings.TrimSpace(p) != p {
				t.Fatalf("parseScope(%q) accepted field %q", s, p)
			}
		}
		if strings.Contains(sc.Resource, ":") || strings.Contains(sc.Action, ":") {
			t.Fatalf("parseScope(%q) = %+v: colon in resource or action", s, sc)
		}
	})
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2025-03-01T00:00:00Z", want: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2025-03-01T01:00:00+01:00", want: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2025-03-01", want: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "24h", want: testNow.Add(-24 * time.Hour)},
		{in: "7d", want: testNow.Add(-7 * 24 * time.Hour)},
		{in: "0", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "2025-13-01", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, testNow)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, %v; want %v in UTC", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-03-01T00:00:00Z", "2025-03-01", "24h", "0", "2025-03-01T00:00:00.123456789+14:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s, testNow)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, not UTC", s, got)
		}
		if _, derr := parseDuration(s); derr == nil && got.After(testNow) {
			t.Fatalf("parseTime(%q) = %v: a duration ago lies in the future", s, got)
		}
	})
}

func TestRolePolicy(t *testing.T) {
	got, err := rolePolicy("shop", "ci", "sync", "web-*", "deny")
	if want := "p, proj:shop:ci, applications, sync, shop/web-*, deny"; err != nil || got != want {
		t.Errorf("rolePolicy = %q, %v; want %q", got, err, want)
	}
	if got, want := policyFields(" p ,proj:shop:ci,  applications, sync ,shop/*,allow"), []string{"p", "proj:shop:ci", "applications", "sync", "shop/*", "allow"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("policyFields = %q, want %q", got, want)
	}
}
