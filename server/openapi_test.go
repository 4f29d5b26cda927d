package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

// The OpenAPI document (server/openapi.json) is held to the route table,
// route for route, and to the server's real answers: every answer of a
// realistic session with the API is validated against the schema the
// document declares for its operation and status.

const openAPIFile = "openapi.json"

// openAPIMethods are the operations an OpenAPI 3.1 path item holds. A
// route without a method (forward auth) takes every one of them.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// The route table's paths that the document does not describe: the two
// catch-alls (a JSON 404 under /api/, the dashboard's 404 elsewhere), and
// the dashboard's pages, forms and assets, by prefix: HTML for a browser,
// not an API. Any other path must be in the document; a new top-level
// path that is in neither fails the route-table test until it is placed.
var (
	openAPICatchAlls       = []string{"/", "/api/"}
	openAPIDashboardPrefix = []string{"/{$}", "/static/", "/login", "/logout", "/auth/", "/user-info", "/tokens/",
		"/accounts", "/projects", "/applications", "/audit", "/break-glass", "/trust", "/settings", "/users"}
	// openAPIPublic are the paths outside /api/ that clients call.
	openAPIPublic = []string{"/healthz", "/readyz", "/metrics"}
)

// specScope says whether the document must describe a route-table path;
// ok is false for a path it cannot place.
func specScope(path string) (inSpec, ok bool) {
	if slices.Contains(openAPICatchAlls, path) {
		return false, true
	}
	if strings.HasPrefix(path, "/api/") || slices.Contains(openAPIPublic, path) {
		return true, true
	}
	for _, p := range openAPIDashboardPrefix {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return false, true
		}
	}
	return false, false
}

var goWildcard = regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`)

// openAPIPath turns a ServeMux path pattern into an OpenAPI path
// template: {name} and {name...} are both {name}.
func openAPIPath(goPath string) string {
	return goWildcard.ReplaceAllString(goPath, "{$1}")
}

// splitPattern splits a route-table pattern into its method ("" for
// any) and path.
func splitPattern(p string) (method, path string) {
	if m, rest, ok := strings.Cut(p, " "); ok {
		return m, rest
	}
	return "", p
}

// The parts of the document the tests read; schemas are read by the
// validator from the document itself.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Responses       map[string]specResponse    `json:"responses"`
		Parameters      map[string]specParameter   `json:"parameters"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type specOperation struct {
	OperationID string          `json:"operationId"`
	Summary     string          `json:"summary"`
	Parameters  []specParameter `json:"parameters"`
	RequestBody *struct {
		Required bool                 `json:"required"`
		Content  map[string]specMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]specResponse `json:"responses"`
	Security  *[]map[string][]string  `json:"security"`
}

type specParameter struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type specResponse struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
	Headers     map[string]struct {
		Required bool `json:"required"`
	} `json:"headers"`
	Content map[string]specMedia `json:"content"`
}

type specMedia struct {
	Schema json.RawMessage `json:"schema"`
}

// openAPISpec is the document, ready to check exchanges against.
type openAPISpec struct {
	raw      []byte
	doc      openAPIDoc
	ops      map[string]specOperation // by "get /api/v1/account"
	routes   *http.ServeMux           // the route table's patterns
	goPaths  map[string]string        // OpenAPI path template by ServeMux path
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer into the document
	seen    map[string]map[int]bool       // statuses answered, by operation
}

func loadOpenAPI(t *testing.T) *openAPISpec {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	s := &openAPISpec{raw: raw, ops: map[string]specOperation{}, routes: http.NewServeMux(),
		goPaths: map[string]string{}, schemas: map[string]*jsonschema.Schema{}, seen: map[string]map[int]bool{}}
	if err := json.Unmarshal(raw, &s.doc); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	for path, item := range s.doc.Paths {
		for method, v := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue
			}
			var op specOperation
			if err := json.Unmarshal(v, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			s.ops[method+" "+path] = op
		}
	}
	nop := func(http.ResponseWriter, *http.Request) {}
	for _, p := range server.RoutePatterns() {
		s.routes.HandleFunc(p, nop)
		_, path := splitPattern(p)
		if in, _ := specScope(path); in {
			s.goPaths[path] = openAPIPath(path)
		}
	}
	// The document is one resource, so that its #/components/schemas
	// references resolve; OpenAPI 3.1's schemas are JSON Schema 2020-12.
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	s.compiler = jsonschema.NewCompiler()
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.AssertFormat()
	if err := s.compiler.AddResource(openAPIFile, doc); err != nil {
		t.Fatal(err)
	}
	return s
}

// pointer is a JSON pointer into the document.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// schema compiles the schema at ptr (once).
func (s *openAPISpec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(openAPIFile + "#" + ptr)
	if err != nil {
		return nil, err
	}
	s.schemas[ptr] = sch
	return sch, nil
}

// validate checks v (decoded with jsonschema.UnmarshalJSON) against the
// schema at ptr; the error lists every violation.
func (s *openAPISpec) validate(ptr string, v any) error {
	sch, err := s.schema(ptr)
	if err != nil {
		return fmt.Errorf("schema %s does not compile: %v", ptr, err)
	}
	return sch.Validate(v)
}

// response resolves an operation's response: the object and the JSON
// pointer its content lives under.
func (s *openAPISpec) response(opPtr string, status string, r specResponse) (specResponse, string, error) {
	if r.Ref == "" {
		return r, opPtr + pointer("responses", status), nil
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
	c, found := s.doc.Components.Responses[name]
	if !ok || !found {
		return r, "", fmt.Errorf("response %s: no such component", r.Ref)
	}
	return c, pointer("components", "responses", name), nil
}

// parameters resolves an operation's parameters.
func (s *openAPISpec) parameters(op specOperation) ([]specParameter, error) {
	out := make([]specParameter, 0, len(op.Parameters))
	for _, p := range op.Parameters {
		if p.Ref != "" {
			name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
			c, found := s.doc.Components.Parameters[name]
			if !ok || !found {
				return nil, fmt.Errorf("parameter %s: no such component", p.Ref)
			}
			p = c
		}
		out = append(out, p)
	}
	return out, nil
}

// specExchange is one request and its answer, as the checker sees them.
type specExchange struct {
	req     *http.Request
	reqBody []byte
	// offSpec marks a request that breaks the document on purpose (an
	// unknown field, a wrong content type): only its answer is checked.
	offSpec bool
	status  int
	header  http.Header
	body    []byte
}

// check holds an exchange to the document. It returns the operation
// ("get /api/v1/account"; "" for a path the document does not have) and
// every problem found.
func (s *openAPISpec) check(x specExchange) (opKey string, problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	_, pattern := s.routes.Handler(x.req)
	method, goPath := splitPattern(pattern)
	if method == "" {
		method = x.req.Method
	}
	if in, _ := specScope(goPath); !in {
		return "", s.checkUnrouted(x)
	}
	path := s.goPaths[goPath]
	opKey = strings.ToLower(method) + " " + path
	op, ok := s.ops[opKey]
	if !ok {
		bad("route %s has no operation %s in the document", pattern, opKey)
		return opKey, problems
	}
	opPtr := pointer("paths", path, strings.ToLower(method))
	if !x.offSpec {
		problems = append(problems, s.checkRequest(x, op, opPtr)...)
	}

	status := strconv.Itoa(x.status)
	declared, ok := op.Responses[status]
	if !ok {
		bad("%s answered %d, which the document does not declare (it declares %s)", opKey, x.status, strings.Join(slices.Sorted(maps.Keys(op.Responses)), ", "))
		return opKey, problems
	}
	resp, respPtr, err := s.response(opPtr, status, declared)
	if err != nil {
		bad("%s %d: %v", opKey, x.status, err)
		return opKey, problems
	}
	problems = append(problems, s.checkAnswer(opKey, x, resp, respPtr)...)

	// An operation that needs a credential never succeeds without one.
	if x.status < 400 && !hasCredential(x.req) && !optionalSecurity(s.security(op)) {
		bad("%s answered %d to a request with no credential, but the document says it needs one", opKey, x.status)
	}
	s.mu.Lock()
	if s.seen[opKey] == nil {
		s.seen[opKey] = map[int]bool{}
	}
	s.seen[opKey][x.status] = true
	s.mu.Unlock()
	return opKey, problems
}

// checkRequest holds what the test sent to the operation's parameters
// and request body: the document must describe the requests of a real
// client.
func (s *openAPISpec) checkRequest(x specExchange, op specOperation, opPtr string) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	params, err := s.parameters(op)
	if err != nil {
		bad("%v", err)
	}
	query := x.req.URL.Query()
	for name := range query {
		if !slices.ContainsFunc(params, func(p specParameter) bool { return p.In == "query" && p.Name == name }) {
			bad("the request's query parameter %q is not a parameter of the operation", name)
		}
	}
	for _, p := range params {
		if p.In == "query" && p.Required && !query.Has(p.Name) {
			bad("the request lacks the required query parameter %q", p.Name)
		}
	}
	if op.RequestBody == nil {
		if len(x.reqBody) > 0 {
			bad("the request has a body, but the operation declares none")
		}
		return problems
	}
	if len(x.reqBody) == 0 {
		if op.RequestBody.Required {
			bad("the request has no body, but the operation requires one")
		}
		return problems
	}
	mt, _, _ := mime.ParseMediaType(x.req.Header.Get("Content-Type"))
	if _, ok := op.RequestBody.Content[mt]; !ok {
		bad("the request's content type %q is not one the operation takes", mt)
		return problems
	}
	var v any
	switch mt {
	case "application/json":
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(x.reqBody)); err != nil {
			bad("the request's JSON body: %v", err)
			return problems
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(x.reqBody))
		if err != nil {
			bad("the request's form: %v", err)
			return problems
		}
		fields := map[string]any{}
		for k, vs := range form {
			fields[k] = vs[0]
		}
		v = fields
	}
	if err := s.validate(opPtr+pointer("requestBody", "content", mt, "schema"), v); err != nil {
		bad("the request body does not match the operation's schema: %v", err)
	}
	return problems
}

// checkAnswer holds an answer to the response the document declares for
// its status: required headers, content type and body.
func (s *openAPISpec) checkAnswer(what string, x specExchange, resp specResponse, respPtr string) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for name, h := range resp.Headers {
		if h.Required && x.header.Get(name) == "" {
			bad("%s %d: no %s header, which the document requires", what, x.status, name)
		}
	}
	if x.req.Method == http.MethodHead {
		return problems // no body
	}
	if len(resp.Content) == 0 {
		if len(x.body) > 0 {
			bad("%s %d: a body, but the document declares none", what, x.status)
		}
		return problems
	}
	mt, _, err := mime.ParseMediaType(x.header.Get("Content-Type"))
	if err != nil {
		bad("%s %d: Content-Type %q: %v", what, x.status, x.header.Get("Content-Type"), err)
		return problems
	}
	if _, ok := resp.Content[mt]; !ok {
		bad("%s %d: Content-Type %s, the document declares %s", what, x.status, mt, strings.Join(slices.Sorted(maps.Keys(resp.Content)), ", "))
		return problems
	}
	var v any
	if mt == "application/json" {
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(x.body)); err != nil {
			bad("%s %d: the body is not JSON: %v", what, x.status, err)
			return problems
		}
	} else {
		v = string(x.body)
	}
	if err := s.validate(respPtr+pointer("content", mt, "schema"), v); err != nil {
		bad("%s %d: the body does not match the document's schema: %v\nbody: %s", what, x.status, err, clip(x.body))
	}
	return problems
}

// checkUnrouted holds an answer of the /api/ catch-all: 405 with Allow
// for a path of the document asked with a method it does not list, 404
// for any other path.
func (s *openAPISpec) checkUnrouted(x specExchange) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	what := x.req.Method + " " + x.req.URL.Path
	if !strings.HasPrefix(x.req.URL.Path, "/api/") {
		return []string{what + ": not a path of the API"}
	}
	path, known := s.pathOf(x.req)
	switch {
	case known && x.status == http.StatusMethodNotAllowed:
		var want []string
		for _, m := range openAPIMethods {
			if _, ok := s.ops[m+" "+path]; ok {
				want = append(want, strings.ToUpper(m))
			}
		}
		if slices.Contains(want, "GET") && !slices.Contains(want, "HEAD") {
			want = append(want, "HEAD") // ServeMux serves HEAD with GET
		}
		got := strings.Split(x.header.Get("Allow"), ", ")
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			bad("%s: Allow %q, the document has %s", what, x.header.Get("Allow"), strings.Join(want, ", "))
		}
		if slices.Contains(want, x.req.Method) {
			bad("%s: 405, but the document has the operation", what)
		}
		problems = append(problems, s.checkAnswer(what, x, s.doc.Components.Responses["MethodNotAllowed"], pointer("components", "responses", "MethodNotAllowed"))...)
	case !known && x.status == http.StatusNotFound:
		problems = append(problems, s.checkAnswer(what, x, s.doc.Components.Responses["NotFound"], pointer("components", "responses", "NotFound"))...)
	default:
		bad("%s: %d from the /api/ catch-all (a path of the document: %v)", what, x.status, known)
	}
	return problems
}

// pathOf finds the document's path of a request's path, whatever its
// method: the route that one of the methods reaches.
func (s *openAPISpec) pathOf(r *http.Request) (string, bool) {
	for _, m := range openAPIMethods {
		r2 := r.Clone(r.Context())
		r2.Method = strings.ToUpper(m)
		_, pattern := s.routes.Handler(r2)
		if _, goPath := splitPattern(pattern); s.goPaths[goPath] != "" {
			return s.goPaths[goPath], true
		}
	}
	return "", false
}

// security is the operation's security requirement, or the document's.
func (s *openAPISpec) security(op specOperation) []map[string][]string {
	if op.Security != nil {
		return *op.Security
	}
	return s.doc.Security
}

// optionalSecurity reports whether a requirement lets a request without
// credentials through: none at all, or an empty alternative.
func optionalSecurity(req []map[string][]string) bool {
	return len(req) == 0 || slices.ContainsFunc(req, func(m map[string][]string) bool { return len(m) == 0 })
}

func hasCredential(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	_, err := r.Cookie(server.CookieName)
	return err == nil
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// TestOpenAPIDescribesTheRouteTable: every API route of the route table
// is an operation of the document, and every operation is a route.
func TestOpenAPIDescribesTheRouteTable(t *testing.T) {
	s := loadOpenAPI(t)
	if !strings.HasPrefix(s.doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", s.doc.OpenAPI)
	}
	routes := map[string]string{} // "get /api/v1/account" -> route pattern
	for _, p := range server.RoutePatterns() {
		method, path := splitPattern(p)
		in, ok := specScope(path)
		if !ok {
			t.Errorf("route %q is neither an API path (/api/..., %s) nor a dashboard path (%s): say in openapi_test.go which it is",
				p, strings.Join(openAPIPublic, ", "), strings.Join(openAPIDashboardPrefix, ", "))
			continue
		}
		if !in {
			continue
		}
		methods := openAPIMethods
		if method != "" {
			methods = []string{strings.ToLower(method)}
		}
		for _, m := range methods {
			routes[m+" "+openAPIPath(path)] = p
		}
	}
	if len(routes) < 50 {
		t.Fatalf("only %d API operations in the route table; is specScope right?", len(routes))
	}
	for key, p := range routes {
		if _, ok := s.ops[key]; !ok {
			t.Errorf("route %q is missing from %s (as %s)", p, openAPIFile, key)
		}
	}
	for key := range s.ops {
		if _, ok := routes[key]; ok {
			continue
		}
		// ServeMux serves HEAD with a GET route.
		if m, path, _ := strings.Cut(key, " "); m == "head" {
			if _, ok := routes["get "+path]; ok {
				continue
			}
		}
		t.Errorf("%s has operation %s, which no route of the route table serves", openAPIFile, key)
	}
}

// TestOpenAPIDocumentIsWellFormed checks what a client generator relies
// on and JSON Schema cannot say about the document: unique operation ids,
// path parameters that match the template, responses that resolve and
// describe themselves, schemas that compile.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	s := loadOpenAPI(t)
	ids := map[string]string{}
	for key, op := range s.ops {
		method, path, _ := strings.Cut(key, " ")
		opPtr := pointer("paths", path, method)
		if op.OperationID == "" || op.Summary == "" {
			t.Errorf("%s: needs an operationId and a summary", key)
		}
		if other, dup := ids[op.OperationID]; dup {
			t.Errorf("%s and %s share the operationId %q", key, other, op.OperationID)
		}
		ids[op.OperationID] = key
		params, err := s.parameters(op)
		if err != nil {
			t.Errorf("%s: %v", key, err)
		}
		var inPath, inTemplate []string
		for _, p := range params {
			if p.In == "path" {
				inPath = append(inPath, p.Name)
				if !p.Required {
					t.Errorf("%s: path parameter %s must be required", key, p.Name)
				}
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			inTemplate = append(inTemplate, m[1])
		}
		sort.Strings(inPath)
		sort.Strings(inTemplate)
		if !slices.Equal(inPath, inTemplate) {
			t.Errorf("%s: path parameters %v, the template has %v", key, inPath, inTemplate)
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", key)
		}
		if _, ok := op.Responses["200"]; !ok {
			t.Errorf("%s: no 200 response", key)
		}
		for status, r := range op.Responses {
			resp, ptr, err := s.resolveForTest(opPtr, status, r)
			if err != nil {
				t.Errorf("%s %s: %v", key, status, err)
				continue
			}
			if resp.Description == "" {
				t.Errorf("%s %s: a response needs a description", key, status)
			}
			for mt := range resp.Content {
				if _, err := s.schema(ptr + pointer("content", mt, "schema")); err != nil {
					t.Errorf("%s %s %s: %v", key, status, mt, err)
				}
			}
		}
		if op.RequestBody != nil {
			for mt := range op.RequestBody.Content {
				if _, err := s.schema(opPtr + pointer("requestBody", "content", mt, "schema")); err != nil {
					t.Errorf("%s request %s: %v", key, mt, err)
				}
			}
		}
		for _, req := range s.security(op) {
			for name := range req {
				if _, ok := s.doc.Components.SecuritySchemes[name]; !ok {
					t.Errorf("%s: security scheme %q is not defined", key, name)
				}
			}
		}
	}
	for name := range s.doc.Components.Schemas {
		if _, err := s.schema(pointer("components", "schemas", name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

func (s *openAPISpec) resolveForTest(opPtr, status string, r specResponse) (specResponse, string, error) {
	if status != "default" {
		if n, err := strconv.Atoi(status); err != nil || n < 100 || n > 599 {
			return r, "", fmt.Errorf("%q is not a status code", status)
		}
	}
	return s.response(opPtr, status, r)
}

// specClient sends requests to a real server and holds every exchange
// to the document.
type specClient struct {
	t    *testing.T
	spec *openAPISpec
	e    *env // remembers the secrets used, for the env's leak check
	base string
}

// specCall is one request. A JSON body is sent with Content-Type
// application/json, as is every request other than GET with none;
// contentType overrides it, and "-" sends none.
type specCall struct {
	method, path string
	token        string
	json         any
	form         url.Values
	raw          []byte
	contentType  string
	header       map[string]string
	offSpec      bool
}

// send makes the call, checks that the status is want and that the
// exchange matches the document, and returns the body.
func (c *specClient) send(sc specCall, want int) []byte {
	c.t.Helper()
	var body []byte
	contentType := "application/json"
	switch {
	case sc.json != nil:
		b, err := json.Marshal(sc.json)
		if err != nil {
			c.t.Fatal(err)
		}
		body = b
	case sc.form != nil:
		body = []byte(sc.form.Encode())
		contentType = "application/x-www-form-urlencoded"
	default:
		body = sc.raw
	}
	if sc.contentType != "" {
		contentType = sc.contentType
	}
	req, err := http.NewRequest(sc.method, c.base+sc.path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if sc.method != http.MethodGet && sc.method != http.MethodHead && contentType != "-" {
		req.Header.Set("Content-Type", contentType)
	}
	if sc.token != "" {
		req.Header.Set("Authorization", "Bearer "+sc.token)
	}
	for k, v := range sc.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	_, problems := c.spec.check(specExchange{req: req, reqBody: body, offSpec: sc.offSpec,
		status: resp.StatusCode, header: resp.Header, body: got})
	for _, p := range problems {
		c.t.Errorf("%s %s: %s", sc.method, sc.path, p)
	}
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", sc.method, sc.path, resp.StatusCode, want, clip(got))
	}
	return got
}

// into sends the call and decodes the answer into out.
func (c *specClient) into(sc specCall, want int, out any) {
	c.t.Helper()
	b := c.send(sc, want)
	if err := json.Unmarshal(b, out); err != nil {
		c.t.Fatalf("%s %s: decoding %s: %v", sc.method, sc.path, clip(b), err)
	}
}

// get, post, put, patch and del are the common shapes of a call.
func (c *specClient) get(path, tok string, want int) []byte {
	c.t.Helper()
	return c.send(specCall{method: "GET", path: path, token: tok}, want)
}

func (c *specClient) post(path, tok string, body any, want int) []byte {
	c.t.Helper()
	return c.send(specCall{method: "POST", path: path, token: tok, json: body}, want)
}

func (c *specClient) put(path, tok string, body any, want int) []byte {
	c.t.Helper()
	return c.send(specCall{method: "PUT", path: path, token: tok, json: body}, want)
}

func (c *specClient) patch(path, tok string, body any, want int) []byte {
	c.t.Helper()
	return c.send(specCall{method: "PATCH", path: path, token: tok, json: body}, want)
}

func (c *specClient) del(path, tok string, want int) []byte {
	c.t.Helper()
	return c.send(specCall{method: "DELETE", path: path, token: tok}, want)
}

func (c *specClient) login(user, password string) string {
	c.t.Helper()
	var out struct{ Token string }
	c.into(specCall{method: "POST", path: "/api/v1/session", json: gatehouse.LoginRequest{Username: user, Password: password}}, 200, &out)
	c.e.remember(password, out.Token)
	return out.Token
}

func (c *specClient) mint(path, tok string, req gatehouse.TokenRequest) gatehouse.NewToken {
	c.t.Helper()
	var nt gatehouse.NewToken
	c.into(specCall{method: "POST", path: path, token: tok, json: req}, 200, &nt)
	c.e.remember(nt.Token)
	return nt
}

// TestOpenAPIAnswersMatchTheSpec drives the real server through a
// realistic session with every operation of the API, successes and
// refusals, and validates every answer against the schema the document
// declares for its operation and status; an answer with a status the
// document does not declare fails. Every operation must have answered
// with success at least once.
func TestOpenAPIAnswersMatchTheSpec(t *testing.T) {
	spec := loadOpenAPI(t)
	e := newEnv(t, withRoutes(server.Route{Match: "/web/", Resource: "applications", Action: "get", Object: "shop/web"}))
	c := &specClient{t: t, spec: spec, e: e, base: e.srv.URL}
	now := e.clock.Now()

	// Operations and this document.
	c.get("/healthz", "", 200)
	c.get("/readyz", "", 200)
	c.get("/api/version", "", 200)
	if b := c.get("/api/v1/openapi.json", "", 200); !bytes.Equal(b, spec.raw) {
		t.Errorf("GET /api/v1/openapi.json is not %s", openAPIFile)
	}
	admin := c.login("admin", adminPassword)
	for _, empty := range []string{"/api/v1/projects", "/api/v1/applications", "/api/v1/trust-policies", "/api/v1/account/admin/token"} {
		c.get(empty, admin, 200) // an empty list is [], not null
	}
	c.get("/metrics", "", 401)
	c.get("/metrics", admin, 404) // served on the metrics listener
	reg := prometheus.NewRegistry()
	withMetrics := httptest.NewServer(server.New(server.Options{Service: e.svc, Metrics: service.NewMetrics(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}))
	t.Cleanup(withMetrics.Close)
	mc := &specClient{t: t, spec: spec, e: e, base: withMetrics.URL}
	mc.get("/metrics", admin, 200)

	// Session.
	c.send(specCall{method: "POST", path: "/api/v1/session", json: gatehouse.LoginRequest{Username: "admin", Password: "not the password"}}, 401)
	c.send(specCall{method: "POST", path: "/api/v1/session", json: gatehouse.LoginRequest{Username: "admin"}, offSpec: true}, 400)
	c.send(specCall{method: "POST", path: "/api/v1/session", raw: []byte(`{"username":"admin","password":"x","otp":"1"}`), offSpec: true}, 400)
	c.send(specCall{method: "POST", path: "/api/v1/session", raw: []byte(`username=admin`), contentType: "application/x-www-form-urlencoded", offSpec: true}, 415)
	c.send(specCall{method: "POST", path: "/api/v1/session", raw: bytes.Repeat([]byte(" "), 2<<20), offSpec: true}, 413)
	c.send(specCall{method: "POST", path: "/api/v1/session", json: gatehouse.LoginRequest{Username: "admin", Password: adminPassword},
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403)
	c.get("/api/v1/session/userinfo", "", 200)
	c.get("/api/v1/session/userinfo", admin, 200)
	c.get("/api/v1/session/userinfo", "not-a-token", 401)

	// The policy the rest runs under.
	var rbac gatehouse.RBAC
	c.into(specCall{method: "GET", path: "/api/v1/settings/rbac", token: admin}, 200, &rbac)
	rbac.PolicyCSV = "p, ci, applications, *, *, allow\np, alice, applications, get, shop/*, allow\n"
	c.put("/api/v1/settings/rbac", admin, rbac, 200)
	c.put("/api/v1/settings/rbac", admin, gatehouse.RBAC{PolicyCSV: "p, alice, applications"}, 400)
	c.get("/api/v1/settings/rbac/can?subject=alice&resource=applications&action=get&object=shop/web", admin, 200)
	c.send(specCall{method: "GET", path: "/api/v1/settings/rbac/can?subject=alice&resource=applications&action=get", token: admin, offSpec: true}, 400)

	// A field the configuration file sets is named in the answers, and the
	// API may not change it.
	managed := newEnv(t, func(o *envSettings) {
		o.FileRBAC = service.FileRBAC{File: "gatehouse.yaml", Settings: []service.FileSetting{{Field: "matchMode", Value: "glob"}}}
	})
	mgc := &specClient{t: t, spec: spec, e: managed, base: managed.srv.URL}
	var fileSet gatehouse.RBAC
	mgc.into(specCall{method: "GET", path: "/api/v1/settings/rbac", token: managed.admin}, 200, &fileSet)
	if !slices.Equal(fileSet.ManagedByConfig, []string{"matchMode"}) {
		t.Errorf("managedByConfig = %q, want [matchMode]", fileSet.ManagedByConfig)
	}
	mgc.put("/api/v1/settings/rbac", managed.admin, fileSet, 200)
	fileSet.MatchMode = "regex"
	mgc.put("/api/v1/settings/rbac", managed.admin, fileSet, 409)

	// Accounts.
	e.remember("alice-password", "alice-password-2", "nokey-password")
	c.post("/api/v1/account", admin, gatehouse.AccountCreate{Name: "alice", Capabilities: []gatehouse.Capability{"login", "apiKey"}, Password: "alice-password"}, 200)
	c.post("/api/v1/account", admin, gatehouse.AccountCreate{Name: "ci", Capabilities: []gatehouse.Capability{"apiKey"}}, 200)
	c.post("/api/v1/account", admin, gatehouse.AccountCreate{Name: "nokey", Capabilities: []gatehouse.Capability{"login"}, Password: "nokey-password"}, 200)
	c.post("/api/v1/account", admin, gatehouse.AccountCreate{Name: "doomed", Capabilities: []gatehouse.Capability{"apiKey"}, Groups: []string{"temps"}}, 200)
	c.post("/api/v1/account", admin, gatehouse.AccountCreate{Name: "alice", Capabilities: []gatehouse.Capability{"apiKey"}}, 409)
	c.send(specCall{method: "POST", path: "/api/v1/account", token: admin, json: gatehouse.AccountCreate{Name: "Not A Name"}, offSpec: true}, 400)
	alice := c.login("alice", "alice-password")
	nobody := c.login("nokey", "nokey-password") // no permission at all
	c.post("/api/v1/account", alice, gatehouse.AccountCreate{Name: "mallory", Capabilities: []gatehouse.Capability{"apiKey"}}, 403)
	c.get("/api/v1/account", admin, 200)
	c.get("/api/v1/account", alice, 200)
	c.get("/api/v1/account/alice", alice, 200)
	c.get("/api/v1/account/admin", alice, 403)
	c.get("/api/v1/account/nosuch", admin, 404)
	c.patch("/api/v1/account/alice", admin, gatehouse.AccountPatch{Groups: &[]string{"devs"}}, 200)
	enabled := false
	c.patch("/api/v1/account/admin", admin, gatehouse.AccountPatch{Enabled: &enabled}, 412)
	c.patch("/api/v1/account/nosuch", admin, gatehouse.AccountPatch{Enabled: &enabled}, 404)
	c.patch("/api/v1/account/ci", alice, gatehouse.AccountPatch{Enabled: &enabled}, 403)
	c.put("/api/v1/account/password", alice, gatehouse.PasswordChange{CurrentPassword: "wrong-password", NewPassword: "alice-password-2"}, 401)
	c.put("/api/v1/account/password", alice, gatehouse.PasswordChange{CurrentPassword: "alice-password", NewPassword: "alice-password-2"}, 200)
	c.put("/api/v1/account/password", alice, gatehouse.PasswordChange{Name: "ci", CurrentPassword: "alice-password-2", NewPassword: "whatever-it-is"}, 403)
	c.get("/api/v1/account/can-i/applications/get/shop/web", alice, 200)
	c.get("/api/v1/account/can-i/applications/delete/shop/web", alice, 200)
	c.get("/api/v1/account/can-i/applications/get/shop%2Fweb", alice, 200) // a generated client escapes the slash
	c.del("/api/v1/account/doomed", admin, 200)
	c.del("/api/v1/account/doomed", admin, 404)
	c.del("/api/v1/account/admin", admin, 412)
	c.del("/api/v1/account/ci", alice, 403)

	// Tokens.
	ciTok := c.mint("/api/v1/account/ci/token", admin, gatehouse.TokenRequest{Name: "deploy", ExpiresIn: seconds(86400),
		Scopes: []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "shop/*"}}})
	c.post("/api/v1/account/ci/token", admin, gatehouse.TokenRequest{Name: "too much", Scopes: []gatehouse.Scope{{Resource: "accounts", Action: "*", Object: "*"}}}, 400)
	c.post("/api/v1/account/nosuch/token", admin, gatehouse.TokenRequest{Name: "x"}, 404)
	c.post("/api/v1/account/nokey/token", admin, gatehouse.TokenRequest{Name: "x"}, 412)
	c.post("/api/v1/account/ci/token", alice, gatehouse.TokenRequest{Name: "x"}, 403)
	aliceTok := c.mint("/api/v1/account/alice/token", alice, gatehouse.TokenRequest{ID: "laptop"})
	c.get("/api/v1/account/ci/token", admin, 200)
	c.get("/api/v1/account/ci", admin, 200) // an account with a token (scoped, not yet used)
	c.get("/api/v1/account/ci/token", alice, 403)
	c.get("/api/v1/account/nosuch/token", admin, 404)
	var rotated gatehouse.NewToken
	c.into(specCall{method: "POST", path: "/api/v1/account/ci/token/" + ciTok.ID + "/rotate", token: admin, json: gatehouse.RotateRequest{GraceSeconds: 60}}, 200, &rotated)
	e.remember(rotated.Token)
	c.send(specCall{method: "POST", path: "/api/v1/account/ci/token/" + rotated.ID + "/rotate", token: admin, json: gatehouse.RotateRequest{GraceSeconds: 1 << 30}, offSpec: true}, 400)
	c.post("/api/v1/account/ci/token/00000000-0000-0000-0000-000000000000/rotate", admin, gatehouse.RotateRequest{}, 404)
	selfTok := c.mint("/api/v1/account/ci/token", admin, gatehouse.TokenRequest{Name: "pipeline", SelfRotate: true, IdleTimeout: seconds(86400)})
	var selfNext gatehouse.NewToken
	c.into(specCall{method: "POST", path: "/api/v1/account/ci/token/self/rotate", token: selfTok.Token, json: gatehouse.RotateRequest{}}, 200, &selfNext)
	e.remember(selfNext.Token)
	c.post("/api/v1/account/ci/token/self/rotate", selfTok.Token, gatehouse.RotateRequest{}, 401) // rotated away: its family is revoked
	c.post("/api/v1/account/ci/token/self/rotate", ciTok.Token, gatehouse.RotateRequest{}, 403)
	c.post("/api/v1/tokens/leaked", "", gatehouse.LeakReport{Tokens: []string{selfNext.Token}}, 200)
	c.send(specCall{method: "POST", path: "/api/v1/tokens/leaked", json: gatehouse.LeakReport{SHA256: []string{"nothex"}}, offSpec: true}, 400)
	c.del("/api/v1/account/alice/token/"+aliceTok.ID, alice, 200)
	c.del("/api/v1/account/alice/token/"+aliceTok.ID, alice, 404)
	c.del("/api/v1/account/ci/token/"+rotated.ID, alice, 403)
	c.mint("/api/v1/account/alice/token", alice, gatehouse.TokenRequest{Name: "old"})
	c.del("/api/v1/account/alice/token?issuedBefore="+url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339)), alice, 200)
	c.del("/api/v1/account/alice/token?issuedBefore=yesterday", alice, 400)
	c.del("/api/v1/account/nosuch/token", admin, 404)
	c.del("/api/v1/account/ci/token", alice, 403)

	// Projects and role tokens.
	shop := gatehouse.Project{Name: "shop", Description: "The shop", Roles: []gatehouse.ProjectRole{{
		Name: "deployer", Policies: []string{"p, proj:shop:deployer, applications, sync, shop/*, allow"},
	}}}
	c.post("/api/v1/projects", admin, shop, 200)
	c.post("/api/v1/projects", admin, shop, 409)
	c.post("/api/v1/projects", admin, gatehouse.Project{Name: "other", Roles: []gatehouse.ProjectRole{{
		Name: "r", Policies: []string{"p, proj:other:r, applications, get, shop/*, allow"}}}}, 400)
	c.post("/api/v1/projects", alice, gatehouse.Project{Name: "mine"}, 403)
	c.post("/api/v1/projects", admin, gatehouse.Project{Name: "empty"}, 200)
	c.get("/api/v1/projects", admin, 200)
	c.get("/api/v1/projects", alice, 200)
	c.get("/api/v1/projects/shop", admin, 200)
	c.get("/api/v1/projects/shop", alice, 403)
	c.get("/api/v1/projects/nosuch", admin, 404)
	shop.Roles = append(shop.Roles, gatehouse.ProjectRole{Name: "viewer", Groups: []string{"devs"},
		Policies: []string{"p, proj:shop:viewer, applications, get, shop/*, allow"}})
	c.put("/api/v1/projects/shop", admin, shop, 200)
	c.put("/api/v1/projects/shop", admin, gatehouse.Project{Name: "other"}, 400)
	c.put("/api/v1/projects/nosuch", admin, gatehouse.Project{Description: "no such project"}, 404)
	c.put("/api/v1/projects/shop", alice, shop, 403)
	deployer := c.mint("/api/v1/projects/shop/roles/deployer/token", admin, gatehouse.TokenRequest{Name: "ci", ExpiresIn: seconds(3600)})
	viewer := c.mint("/api/v1/projects/shop/roles/viewer/token", admin, gatehouse.TokenRequest{})
	c.post("/api/v1/projects/shop/roles/nosuch/token", admin, gatehouse.TokenRequest{}, 404)
	c.post("/api/v1/projects/shop/roles/deployer/token", admin, gatehouse.TokenRequest{Scopes: []gatehouse.Scope{{Resource: "a", Action: "b", Object: "c"}}}, 400)
	c.post("/api/v1/projects/shop/roles/deployer/token", alice, gatehouse.TokenRequest{}, 403)
	c.get("/api/v1/projects/shop/roles/deployer/token", admin, 200)
	c.get("/api/v1/projects/shop/roles/nosuch/token", admin, 404)
	c.get("/api/v1/projects/shop/roles/deployer/token", nobody, 403)
	c.del("/api/v1/projects/shop/roles/viewer/token/"+viewer.ID, admin, 200)
	c.del("/api/v1/projects/shop/roles/viewer/token/"+viewer.ID, admin, 404)
	c.del("/api/v1/projects/shop/roles/deployer/token/"+deployer.ID, nobody, 403)
	c.get("/api/v1/session/userinfo", deployer.Token, 200)
	c.get("/api/v1/account", deployer.Token, 200) // an empty list is [], not null

	// Applications and operations.
	web := app("web", "shop")
	c.post("/api/v1/applications", admin, web, 200)
	c.post("/api/v1/applications", admin, web, 409)
	c.post("/api/v1/applications", admin, app("api", "nosuch"), 400)
	c.post("/api/v1/applications", alice, app("blog", "shop"), 403)
	c.get("/api/v1/applications", admin, 200)
	c.get("/api/v1/applications?project=shop", alice, 200)
	c.get("/api/v1/applications/web", alice, 200)
	c.get("/api/v1/applications/web", deployer.Token, 403)
	c.get("/api/v1/applications/nosuch", admin, 404)
	web.Spec.TargetRevision = "main"
	c.put("/api/v1/applications/web", admin, web, 200)
	c.put("/api/v1/applications/web", admin, app("other", "shop"), 400)
	c.put("/api/v1/applications/web", alice, web, 403)
	c.put("/api/v1/applications/nosuch", admin, app("nosuch", "shop"), 404)
	var op gatehouse.Operation
	c.into(specCall{method: "POST", path: "/api/v1/applications/web/sync", token: deployer.Token, json: gatehouse.SyncRequest{Revision: "v1.2.3", Prune: true}}, 200, &op)
	c.post("/api/v1/applications/web/sync", alice, gatehouse.SyncRequest{}, 403)
	c.post("/api/v1/applications/nosuch/sync", admin, gatehouse.SyncRequest{}, 404)
	c.send(specCall{method: "POST", path: "/api/v1/applications/web/sync", token: admin, json: gatehouse.SyncRequest{Revision: strings.Repeat("r", 300)}, offSpec: true}, 400)
	c.get("/api/v1/applications/web/operations?state=Pending", alice, 200)
	c.get("/api/v1/applications/web/operations?state=Asleep", admin, 400)
	c.get("/api/v1/applications/web/operations", deployer.Token, 403)
	c.get("/api/v1/applications/nosuch/operations", admin, 404)
	opPath := "/api/v1/applications/web/operations/" + op.ID
	c.put(opPath, admin, gatehouse.OperationReport{State: "Running"}, 200)
	c.put(opPath, admin, gatehouse.OperationReport{State: "Running"}, 412)
	c.send(specCall{method: "PUT", path: opPath, token: admin, json: gatehouse.OperationReport{State: "Asleep"}, offSpec: true}, 400)
	c.put(opPath, alice, gatehouse.OperationReport{State: "Succeeded"}, 403)
	c.put("/api/v1/applications/web/operations/nosuch", admin, gatehouse.OperationReport{State: "Running"}, 404)
	c.put(opPath, admin, gatehouse.OperationReport{State: "Succeeded", Message: "synced"}, 200)
	c.put("/api/v1/applications/web/status", admin, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy", Revision: "v1.2.3"}, 200)
	c.send(specCall{method: "PUT", path: "/api/v1/applications/web/status", token: admin, json: gatehouse.StatusReport{Sync: "Synced", Health: "Great"}, offSpec: true}, 400)
	c.put("/api/v1/applications/web/status", alice, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}, 403)
	c.put("/api/v1/applications/nosuch/status", admin, gatehouse.StatusReport{Sync: "Synced", Health: "Healthy"}, 404)
	c.get("/api/v1/applications/web", admin, 200) // with the reported status
	c.del("/api/v1/projects/shop", admin, 412)    // it has an application
	c.del("/api/v1/projects/empty", admin, 200)
	c.del("/api/v1/projects/empty", admin, 404)
	c.del("/api/v1/projects/shop", alice, 403)

	// Trust policies and token exchange.
	is := newIssuer(t)
	policy := gatehouse.TrustPolicy{
		Name: "shop-deploy", Issuer: is.url(), JWKSURL: is.jwksURL(), Audiences: []string{testAudience},
		Claims:  map[string]gatehouse.ClaimPatterns{"repository_id": {"123456"}, "ref": {"refs/heads/main"}, "environment": {"prod*"}},
		Account: "ci", TTL: 900, Scopes: []gatehouse.Scope{{Resource: "applications", Action: "sync", Object: "shop/*"}},
	}
	c.post("/api/v1/trust-policies", admin, policy, 200)
	c.post("/api/v1/trust-policies", admin, policy, 409)
	c.send(specCall{method: "POST", path: "/api/v1/trust-policies", token: admin, // a claim condition may be a number
		raw: []byte(`{"name":"numeric","issuer":"` + is.url() + `","jwksURL":"` + is.jwksURL() + `","audiences":["` + testAudience + `"],"claims":{"repository_id":123456,"ref":["refs/heads/main"]},"project":"shop","role":"deployer"}`)}, 200)
	noClaims := policy
	noClaims.Name, noClaims.Claims = "no-claims", nil
	c.send(specCall{method: "POST", path: "/api/v1/trust-policies", token: admin, json: noClaims, offSpec: true}, 400)
	ghost := policy
	ghost.Name, ghost.Account, ghost.Scopes = "ghost", "nosuch", nil
	c.post("/api/v1/trust-policies", admin, ghost, 404)
	keyless := policy
	keyless.Name, keyless.Account, keyless.Scopes = "keyless", "nokey", nil
	c.post("/api/v1/trust-policies", admin, keyless, 412)
	c.post("/api/v1/trust-policies", alice, policy, 403)
	c.get("/api/v1/trust-policies", admin, 200)
	c.get("/api/v1/trust-policies", alice, 403)
	c.get("/api/v1/trust-policies/shop-deploy", admin, 200)
	c.get("/api/v1/trust-policies/nosuch", admin, 404)
	policy.TTL = 600
	c.put("/api/v1/trust-policies/shop-deploy", admin, policy, 200)
	c.put("/api/v1/trust-policies/nosuch", admin, gatehouse.TrustPolicy{Issuer: policy.Issuer, JWKSURL: policy.JWKSURL,
		Audiences: policy.Audiences, Claims: policy.Claims, Account: "ci"}, 404)
	c.put("/api/v1/trust-policies/shop-deploy", alice, policy, 403)
	openAPIWebhooks(t, c, admin, alice)
	idToken := is.sign(githubClaims(now))
	e.remember(idToken)
	c.post("/api/v1/trust-policies/shop-deploy/test", admin, gatehouse.TrustTest{Token: idToken}, 200)
	c.post("/api/v1/trust-policies/shop-deploy/test", alice, gatehouse.TrustTest{Token: idToken}, 200)
	c.post("/api/v1/trust-policies/shop-deploy/test", admin, gatehouse.TrustTest{Token: "not.a.jwt"}, 200)
	c.post("/api/v1/trust-policies/nosuch/test", admin, gatehouse.TrustTest{Token: idToken}, 404)
	c.post("/api/v1/trust-policies/nosuch/test", alice, gatehouse.TrustTest{Token: idToken}, 200)
	c.send(specCall{method: "POST", path: "/api/v1/trust-policies/shop-deploy/test", token: admin, json: gatehouse.TrustTest{}, offSpec: true}, 400)
	form := url.Values{
		"grant_type":         {gatehouse.GrantTokenExchange},
		"subject_token":      {idToken},
		"subject_token_type": {gatehouse.TokenTypeIDToken},
		"trust_policy":       {"shop-deploy"},
	}
	var exchanged gatehouse.ExchangeResponse
	c.into(specCall{method: "POST", path: "/api/v1/token/exchange", form: form}, 200, &exchanged)
	e.remember(exchanged.AccessToken)
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange", form: form}, 400) // a replay
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange", form: url.Values{"grant_type": {"password"}}, offSpec: true}, 400)
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange?subject_token=x", form: form, offSpec: true}, 400)
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange", json: map[string]string{"grant_type": gatehouse.GrantTokenExchange}, offSpec: true}, 400)
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange", form: url.Values{"subject_token": {strings.Repeat("a", 2<<20)}}, offSpec: true}, 413)
	c.send(specCall{method: "POST", path: "/api/v1/token/exchange", form: form, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403)
	c.get("/api/v1/session/userinfo", exchanged.AccessToken, 200)
	c.del("/api/v1/trust-policies/numeric", admin, 200)
	c.del("/api/v1/trust-policies/numeric", admin, 404)
	c.del("/api/v1/trust-policies/shop-deploy", alice, 403)

	// Introspection and forward auth.
	c.send(specCall{method: "POST", path: "/api/v1/introspect", token: admin, form: url.Values{"token": {rotated.Token}}}, 200)
	c.send(specCall{method: "POST", path: "/api/v1/introspect", token: admin, form: url.Values{"token": {"not-a-token"}}}, 200)
	c.send(specCall{method: "POST", path: "/api/v1/introspect", form: url.Values{"token": {rotated.Token}}}, 401)
	c.send(specCall{method: "POST", path: "/api/v1/introspect", token: admin, raw: []byte("token=%zz"), contentType: "application/x-www-form-urlencoded", offSpec: true}, 400)
	original := map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/web/"}
	for _, m := range openAPIMethods {
		c.send(specCall{method: strings.ToUpper(m), path: "/api/v1/auth/verify", token: alice, header: original, contentType: "-"}, 200)
	}
	c.send(specCall{method: "GET", path: "/api/v1/auth/verify", token: deployer.Token, header: original}, 403)
	c.send(specCall{method: "GET", path: "/api/v1/auth/verify", token: "not-a-token", header: original}, 401)
	c.send(specCall{method: "GET", path: "/api/v1/auth/verify", token: alice}, 400)

	// The audit trail.
	var page gatehouse.List[gatehouse.Event]
	c.into(specCall{method: "GET", path: "/api/v1/audit?limit=3", token: admin}, 200, &page)
	if page.NextCursor == "" {
		t.Fatal("the first page of the audit trail has no nextCursor")
	}
	c.get("/api/v1/audit?limit=3&cursor="+url.QueryEscape(page.NextCursor), admin, 200)
	filters := url.Values{
		"actor": {"alice"}, "account": {"alice"}, "type": {"request"}, "resource": {"applications"}, "action": {"get"},
		"decision": {"allow"}, "route": {"GET /api/v1/applications/{name}"}, "status": {"200"},
		"since": {now.Add(-time.Hour).Format(time.RFC3339)}, "until": {now.Add(time.Hour).Format(time.RFC3339)},
	}
	c.into(specCall{method: "GET", path: "/api/v1/audit?" + filters.Encode(), token: admin}, 200, &page)
	if len(page.Items) == 0 {
		t.Error("the audit filters matched no event")
	}
	c.get("/api/v1/audit?type=token.revoked&tokenId="+aliceTok.ID, alice, 200)
	c.get("/api/v1/audit?decision=deny", alice, 200)
	c.get("/api/v1/audit?actor=admin", alice, 403)
	c.get("/api/v1/audit?status=ok", admin, 400)
	c.send(specCall{method: "GET", path: "/api/v1/audit?user=admin", token: admin, offSpec: true}, 400)
	var verified gatehouse.ChainVerification
	c.into(specCall{method: "GET", path: "/api/v1/audit/verify", token: admin}, 200, &verified)
	c.get("/api/v1/audit/verify?anchor="+url.QueryEscape(verified.Anchor), admin, 200)
	c.send(specCall{method: "GET", path: "/api/v1/audit/verify?anchor=1:not-hex", token: admin, offSpec: true}, 400)
	c.get("/api/v1/audit/verify", alice, 403)

	// Break-glass.
	c.post("/api/v1/admin/revoke", admin, gatehouse.BulkRevoke{Account: "ci", DryRun: true}, 200)
	c.post("/api/v1/admin/revoke", admin, gatehouse.BulkRevoke{Project: "shop", Role: "deployer", Kind: gatehouse.KindProject, IssuedBefore: now.Add(time.Hour)}, 200)
	c.post("/api/v1/admin/revoke", admin, gatehouse.BulkRevoke{DryRun: true}, 400)
	c.post("/api/v1/admin/revoke", alice, gatehouse.BulkRevoke{Account: "ci"}, 403)
	if b := c.get("/api/v1/admin/backup", admin, 200); !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
		t.Errorf("the backup is not a SQLite database: %q...", clip(b[:min(len(b), 32)]))
	}
	c.get("/api/v1/admin/backup", alice, 403)

	// Device login without SSO.
	c.post("/api/v1/session/device", "", struct{}{}, 404)
	c.post("/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: "x"}, 404)
	c.send(specCall{method: "POST", path: "/api/v1/session/device/token", json: gatehouse.DevicePoll{}, offSpec: true}, 400)

	// Refusals of the router and the middleware.
	c.send(specCall{method: "DELETE", path: "/api/v1/projects", token: admin}, 405)
	c.send(specCall{method: "GET", path: "/api/v1/token/exchange"}, 405)
	c.send(specCall{method: "PUT", path: "/api/v1/session/userinfo", token: admin}, 405)
	c.send(specCall{method: "PATCH", path: "/api/v1/account/alice/token/" + rotated.ID, token: admin}, 405)
	c.get("/api/v1/no-such-thing", admin, 404)
	c.send(specCall{method: "POST", path: "/api/v1/account", token: admin, raw: []byte(`{"name":"x"}`), contentType: "text/plain", offSpec: true}, 415)
	c.send(specCall{method: "DELETE", path: "/api/v1/account/alice/token/" + rotated.ID, token: admin, contentType: "-", offSpec: true}, 415)
	c.send(specCall{method: "POST", path: "/api/v1/account", token: admin, raw: []byte(`{"name":`), offSpec: true}, 400)

	c.del("/api/v1/applications/web", alice, 403)
	c.del("/api/v1/applications/web", admin, 200)
	c.del("/api/v1/applications/web", admin, 404)

	// Logout, last for alice; then the login throttle.
	c.del("/api/v1/session", rotated.Token, 400) // an API token is no session
	c.del("/api/v1/session", alice, 200)
	c.del("/api/v1/session", alice, 401)
	for i := 0; ; i++ {
		status := 401
		if i == 5 {
			status = 429
		}
		c.send(specCall{method: "POST", path: "/api/v1/session", json: gatehouse.LoginRequest{Username: "nokey", Password: "guess-" + strconv.Itoa(i)}}, status)
		if status == 429 {
			break
		}
	}

	openAPIDeviceLogin(t, spec)

	// Every operation has been seen to succeed.
	var missing []string
	for key, op := range spec.ops {
		ok := false
		for status := range spec.seen[key] {
			ok = ok || status < 300
		}
		if !ok {
			missing = append(missing, key+" ("+op.OperationID+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no request of this test succeeded on %s: add one, so that its answer is validated", m)
	}
	pairs := 0
	for _, statuses := range spec.seen {
		pairs += len(statuses)
	}
	t.Logf("%d operations, %d (operation, status) pairs validated", len(spec.seen), pairs)
}

// openAPIDeviceLogin runs a device login (RFC 8628) through a real
// identity provider: started, pending, approved, spent, and refused.
func openAPIDeviceLogin(t *testing.T, spec *openAPISpec) {
	s := newSSOEnv(t, "")
	c := &specClient{t: t, spec: spec, e: s.env, base: s.srv.URL}
	var dl gatehouse.DeviceLogin
	c.into(specCall{method: "POST", path: "/api/v1/session/device", json: struct{}{}}, 200, &dl)
	s.remember(dl.Handle)
	c.post("/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: dl.Handle}, 202)
	resp, err := s.browserClient(nil).PostForm(dl.VerificationURI, url.Values{"user_code": {dl.UserCode}, "username": {"u-alice"}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the provider's device page answered %d", resp.StatusCode)
	}
	time.Sleep(time.Duration(dl.Interval)*time.Second + 100*time.Millisecond) // the interval the 202 gave
	var session struct{ Token string }
	c.into(specCall{method: "POST", path: "/api/v1/session/device/token", json: gatehouse.DevicePoll{Handle: dl.Handle}}, 200, &session)
	s.remember(session.Token)
	c.post("/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: dl.Handle}, 401) // spent
	c.post("/api/v1/session/device/token", "", gatehouse.DevicePoll{Handle: "not-a-handle"}, 401)
	c.get("/api/v1/account/alice@example.com", s.admin, 200) // an SSO account
	c.get("/api/v1/session/userinfo", session.Token, 200)
}

// TestOpenAPICheckerRefusesWrongAnswers shows that the checker fails
// answers that break the document: a missing required field, a field
// the schema does not have, a wrong type, a status or content type the
// document does not declare, a 405 whose Allow disagrees with it.
func TestOpenAPICheckerRefusesWrongAnswers(t *testing.T) {
	s := loadOpenAPI(t)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	account := `{"name":"alice","enabled":true,"capabilities":["login"],"groups":[],"createdAt":"2026-11-26T12:00:00Z","tokens":[],"source":"local"}`
	for name, tc := range map[string]struct {
		method, path string
		status       int
		header       http.Header
		body         string
		want         string // in a problem; "" for none
	}{
		"ok/account": {"GET", "/api/v1/account/alice", 200, jsonHeader, account, ""},
		"ok/error":   {"GET", "/api/v1/account/alice", 404, jsonHeader, `{"error":"not_found","message":"no"}`, ""},
		"ok/405":     {"DELETE", "/api/v1/session/userinfo", 405, http.Header{"Content-Type": {"application/json"}, "Allow": {"GET, HEAD"}}, `{"error":"method_not_allowed","message":"no"}`, ""},
		"fail/missing field": {"GET", "/api/v1/account/alice", 200, jsonHeader,
			strings.Replace(account, `"tokens":[],`, "", 1), "missing property 'tokens'"},
		"fail/extra field": {"GET", "/api/v1/account/alice", 200, jsonHeader,
			strings.Replace(account, `"source"`, `"passwordHash":"x","source"`, 1), "passwordHash"},
		"fail/null list": {"GET", "/api/v1/account", 200, jsonHeader, `{"items":null}`, "items"},
		"fail/wrong type": {"GET", "/api/v1/account/alice", 200, jsonHeader,
			strings.Replace(account, `"enabled":true`, `"enabled":"yes"`, 1), "enabled"},
		"fail/code for the status": {"GET", "/api/v1/account/alice", 404, jsonHeader, `{"error":"permission_denied","message":"no"}`, "/error"},
		"fail/undeclared status":   {"GET", "/api/v1/account/alice", 409, jsonHeader, `{"error":"already_exists","message":"no"}`, "does not declare"},
		"fail/content type":        {"GET", "/api/v1/account/alice", 200, http.Header{"Content-Type": {"text/html"}}, account, "Content-Type text/html"},
		"fail/Allow":               {"DELETE", "/api/v1/session/userinfo", 405, http.Header{"Content-Type": {"application/json"}, "Allow": {"GET, HEAD, DELETE"}}, `{"error":"method_not_allowed","message":"no"}`, "Allow"},
		"fail/no credential":       {"GET", "/api/v1/account/alice", 200, jsonHeader, account, "no credential"},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if name != "fail/no credential" {
				req.Header.Set("Authorization", "Bearer x")
			}
			_, problems := s.check(specExchange{req: req, status: tc.status, header: tc.header, body: []byte(tc.body)})
			all := strings.Join(problems, "\n")
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems with a good answer:\n%s", all)
			case tc.want != "" && !strings.Contains(all, tc.want):
				t.Errorf("problems %q, want one about %q", all, tc.want)
			}
		})
	}
}
