package weburl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for s, want := range map[string]string{
		"https://hooks.example/x?y=1": "",
		"http://127.0.0.1:8080/":      "",
		"https://[::1]:443/p":         "",
		"":                            "must be an http or https URL (lower-case scheme, then ://)",
		"HTTPS://hooks.example/":      "must be an http or https URL (lower-case scheme, then ://)",
		"htTp://0":                    "must be an http or https URL (lower-case scheme, then ://)",
		"https:hooks.example":         "must be an http or https URL (lower-case scheme, then ://)",
		"ftp://hooks.example/":        "must be an http or https URL (lower-case scheme, then ://)",
		"/relative":                   "must be an http or https URL (lower-case scheme, then ://)",
		"https:///path":               "must name a host",
		"https://a:b@hooks.example/":  "must not hold credentials",
		"https://a@hooks.example/":    "must not hold credentials",
		"https://hooks.example/#x":    "must not have a fragment",
		"https://hooks.example/#":     "must not have a fragment",
		"https://hooks.example:0/":    "has a bad port",
		"https://hooks.example:70000": "has a bad port",
		"https://hooks example/":      "is not a URL",
	} {
		if _, got := Parse(s); got != want {
			t.Errorf("Parse(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for h, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"example.com": false, "10.0.0.1": false, "LOCALHOST": false, "": false} {
		if got := Loopback(h); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", h, got, want)
		}
	}
}

// reasons are Parse's refusals: fixed phrases, so none repeats the input.
var reasons = map[string]bool{"is not a URL": true, "must be an http or https URL (lower-case scheme, then ://)": true,
	"must name a host": true, "must not hold credentials": true, "must not have a fragment": true, "has a bad port": true}

// FuzzParse: what Parse accepts is spelled as an http or https URL with a
// host and no credentials or fragment; what it refuses has one of the
// fixed reasons.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"https://hooks.example/x?y=1", "HTTP://a", "http://[::1]:0/", "https://u:p@h/#f", "https:h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, why := Parse(s)
		if why != "" {
			if u != nil {
				t.Fatalf("Parse(%q) = %v and %q", s, u, why)
			}
			if !reasons[why] {
				t.Fatalf("Parse(%q) reason %q is not one of the fixed ones", s, why)
			}
			return
		}
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") || strings.Contains(s, "#") {
			t.Fatalf("Parse accepted %q", s)
		}
		if u.Hostname() == "" || u.User != nil || u.Fragment != "" || !strings.HasPrefix(s, u.Scheme+"://") {
			t.Fatalf("Parse(%q) = %#v", s, u)
		}
	})
}
