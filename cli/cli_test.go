package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Fixed data shared by the tests.
var (
	testNow = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	// testToken has the real format, so token inspect accepts it.
	testToken = "gatehouse:AR_gHyBqJ0YKlA2KjsaW1pUBAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fIKuBOm0"
	tokenID1  = "1fe01f20-6a27-460a-940d-8a8ec696d695"
	tokenID2  = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	tokenID3  = "16fd2706-8baf-433b-82eb-8c7fada847da"
)

// fakeTerminal is an interactive standard input whose passwords come from
// a queue.
type fakeTerminal struct{ passwords []string }

func (f *fakeTerminal) ReadPassword() (string, error) {
	if len(f.passwords) == 0 {
		return "", io.EOF
	}
	pw := f.passwords[0]
	f.passwords = f.passwords[1:]
	return pw, nil
}

// cliRun is one in-process run of the CLI.
type cliRun struct {
	env      map[string]string
	stdin    string
	terminal *fakeTerminal // nil: not interactive
}

type result struct {
	code           int
	stdout, stderr string
}

func (r cliRun) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{
		Stdin:  strings.NewReader(r.stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return r.env[k] },
		Now:    func() time.Time { return testNow },
	}
	if r.terminal != nil {
		env.Terminal = r.terminal
	}
	code := Run(context.Background(), env, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// newRun returns a run with an empty config directory of its own.
func newRun(t *testing.T) (cliRun, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gatehouse")
	return cliRun{env: map[string]string{"GATEHOUSE_CONFIG_DIR": dir}}, filepath.Join(dir, "config")
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
}

// mustFail fails the test unless r exited non-zero with exactly one line
// "error: ...<want>..." on stderr.
func mustFail(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure; stdout %q", r.stdout)
	}
	// Prompts may come first (a terminal echoes the answer's newline);
	// the error itself is one final line.
	i := strings.Index(r.stderr, "error: ")
	if i < 0 || strings.Count(r.stderr, "error: ") != 1 || strings.Count(r.stderr[i:], "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q, want it to end with one line starting with \"error: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
}

// seen is a request as the fake API received it.
type seen struct {
	method, path, query, auth, body string
}

// fakeAPI is an httptest server with the few routes a test needs. Like the
// real server it answers 415 to a non-GET without JSON, 401 to a wrong
// token and a JSON 404 to unknown routes.
type fakeAPI struct {
	URL string

	mu   sync.Mutex
	reqs []seen
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, gatehouse.ENOTFOUND, "no route "+r.Method+" "+r.URL.Path)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b)})
		f.mu.Unlock()
		if r.Method != http.MethodGet && r.URL.Path != "/api/v1/introspect" {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				apiError(w, http.StatusUnsupportedMediaType, gatehouse.EUNSUPPORTED, "Content-Type must be application/json")
				return
			}
		}
		public := r.Method == http.MethodPost && r.URL.Path == "/api/v1/session"
		if !public && r.Header.Get("Authorization") != "Bearer "+testToken {
			if r.Header.Get("Authorization") == "" && r.URL.Path == "/api/v1/session/userinfo" {
				writeJSON(w, gatehouse.UserInfo{LoggedIn: false})
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			apiError(w, http.StatusUnauthorized, gatehouse.EUNAUTHORIZED, "invalid token")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// requests returns the requests seen so far.
func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// last returns the last request with the given method and path.
func (f *fakeAPI) last(t *testing.T, method, path string) seen {
	t.Helper()
	reqs := f.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].method == method && reqs[i].path == path {
			return reqs[i]
		}
	}
	t.Fatalf("no %s %s among %d requests", method, path, len(reqs))
	return seen{}
}

// count returns how many requests had the given method and path.
func (f *fakeAPI) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.method == method && r.path == path {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}

// reply answers every request with v.
func reply(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, v) }
}

// replyError answers every request with an API error.
func replyError(status int, code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { apiError(w, status, code, msg) }
}

// userinfo answers GET /api/v1/session/userinfo for the test token.
func userinfo(name string) http.HandlerFunc {
	return reply(gatehouse.UserInfo{LoggedIn: true, Username: name, Iss: "gatehouse", TokenID: tokenID1, TokenKind: gatehouse.KindSession})
}

// authed returns a run that reaches api with the test token through the
// environment, without any config file.
func authed(t *testing.T, api *fakeAPI) cliRun {
	t.Helper()
	r, _ := newRun(t)
	r.env["GATEHOUSE_SERVER"] = api.URL
	r.env["GATEHOUSE_AUTH_TOKEN"] = testToken
	return r
}

// golden compares got with testdata/<name>.golden, or rewrites the file
// with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test ./cli -update after checking)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// decodeBody decodes a request body seen by the fake API.
func decodeBody[T any](t *testing.T, s seen) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s.body))
	dec.DisallowUnknownFields() // as the real server does
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s %s body %q: %v", s.method, s.path, s.body, err)
	}
	return v
}

// jsonDecoder decodes a request body strictly, as the real server does.
func jsonDecoder(r *http.Request) *json.Decoder {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec
}
