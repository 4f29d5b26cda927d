package client

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func FuzzParseServer(f *testing.F) {
	f.Add("127.0.0.1:8080", false)
	f.Add("127.0.0.1:8080", true)
	f.Add("https://gatehouse.example.com/prefix/", false)
	f.Add("http://[::1]:80", true)
	f.Add("https://u:p@h/?q#f", false)
	f.Fuzz(func(t *testing.T, in string, plaintext bool) {
		u, err := ParseServer(in, plaintext)
		if err != nil {
			if !gatehouse.IsCode(err, gatehouse.EINVALID) {
				t.Fatalf("ParseServer(%q) error %v, want code %s", in, err, gatehouse.EINVALID)
			}
			// The input may be a secret in the wrong flag: never echo it.
			if s := strings.TrimSpace(in); len(s) >= 12 && strings.Contains(err.Error(), s) {
				t.Fatalf("ParseServer(%q) error %q echoes the input", in, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("ParseServer(%q) scheme %q", in, u.Scheme)
		}
		if plaintext && u.Scheme != "http" {
			t.Fatalf("ParseServer(%q, plaintext) = %s, want http", in, u)
		}
		if u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("ParseServer(%q) = %s: host, credentials, query or fragment wrong", in, u)
		}
		if strings.HasSuffix(u.Path, "/") {
			t.Fatalf("ParseServer(%q) path %q ends with a slash", in, u.Path)
		}
		// The result is a fixed point: parsing its string gives it back.
		again, err := ParseServer(u.String(), plaintext)
		if err != nil {
			t.Fatalf("ParseServer(%q) = %s, which does not parse again: %v", in, u, err)
		}
		if again.String() != u.String() {
			t.Fatalf("ParseServer(%q) = %s, then %s", in, u, again)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(401, "", `{"error":"unauthenticated","message":"token expired"}`)
	f.Add(429, "30", `{"error":"too_many_requests","message":"slow down"}`)
	f.Add(502, "", `<html>bad gateway</html>`)
	f.Add(500, "-1", `{"error":1}`)
	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := decodeError(status, h, strings.NewReader(body))
		if e.Code == "" || e.Message == "" {
			t.Fatalf("decodeError(%d, %q) = {%q, %q}, want a code and a message", status, body, e.Code, e.Message)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("RetryAfter %v < 0", e.RetryAfter)
		}
		if status != http.StatusTooManyRequests && e.RetryAfter != 0 {
			t.Fatalf("RetryAfter %v on status %d", e.RetryAfter, status)
		}
	})
}
