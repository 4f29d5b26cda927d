package server_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/server"
)

// TestWrongMethodIs405WithAllow walks the route table: every API path
// asked with a method it does not take answers 405 with an Allow header
// naming the methods it does take, and a JSON error; an unknown path is
// still 404. With or without a JSON body: the method is wrong either way.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	byPath := map[string][]string{}
	for _, p := range server.RoutePatterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/api/") {
			continue
		}
		concrete := wildcard.ReplaceAllString(path, "x")
		byPath[concrete] = append(byPath[concrete], method)
	}
	checked := 0
	for path, methods := range byPath {
		for _, wrong := range []string{"TRACE", "PATCH", "PUT", "DELETE"} {
			if slices.Contains(methods, wrong) {
				continue
			}
			for _, withJSON := range []bool{false, true} {
				req, _ := http.NewRequest(wrong, e.srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+e.admin)
				if withJSON {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				allow := resp.Header.Get("Allow")
				if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s %s (JSON %v): %d %s, want a JSON 405", wrong, path, withJSON, resp.StatusCode, resp.Header.Get("Content-Type"))
					continue
				}
				for _, m := range methods {
					if !strings.Contains(allow, m) {
						t.Errorf("%s %s: Allow %q does not name %s", wrong, path, allow, m)
					}
				}
				checked++
			}
			break // one wrong method per path is enough
		}
	}
	if checked < 40 {
		t.Errorf("only %d wrong-method requests checked", checked)
	}
	if s, b := e.do("GET", "/api/v1/no-such-thing", e.admin, nil); s != 404 || !contains(b, "not_found") {
		t.Errorf("unknown API path: %d %s, want 404", s, b)
	}
	if s, b := e.do("POST", "/api/v1/no-such-thing", e.admin, map[string]any{}); s != 404 {
		t.Errorf("unknown API path, POST: %d %s, want 404", s, b)
	}
	t.Logf("%d wrong-method requests answered 405 over %d paths", checked, len(byPath))
}
