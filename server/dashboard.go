package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The dashboard: server-rendered html/template pages over the same
// service calls as the JSON API. It authenticates through the session
// cookie only, changes state only on POST (the global cross-origin
// protection guards those), and never puts a token secret in a URL, a log
// line or any page but the one that shows a freshly minted token once.

//go:embed web/templates web/static
var webFS embed.FS

// dashboard holds what the dashboard pages need besides the Server: the
// parsed templates, the static assets with their cache-busting versions
// and the sealer of freshly minted tokens for their one showing.
type dashboard struct {
	s      *Server
	svc    *service.Service
	pages  map[string]*template.Template
	static fs.FS
	// assets maps a static file name to its versioned URL.
	assets map[string]string
	flash  *flashSealer
}

// pageNames are the page templates; each is parsed together with the
// layout and the shared partials.
var pageNames = []string{
	"login", "error", "user_info", "token_form", "token_created",
	"accounts", "account", "projects", "project", "applications",
	"audit", "break_glass", "trust", "sso_cli",
	"project_form", "role_form", "rbac",
	"users_new", "password_reset", "password_change", "audit_token",
}

// newDashboard parses the embedded templates. A template that does not
// parse is a programming error caught by every test, so it panics.
func newDashboard(s *Server) *dashboard {
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	d := &dashboard{
		s:      s,
		svc:    s.svc,
		pages:  map[string]*template.Template{},
		static: static,
		assets: map[string]string{},
		flash:  newFlashSealer(time.Now, rand.Reader, flashTTL, flashSpentCapacity),
	}
	err = fs.WalkDir(static, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		d.assets[p] = "/static/" + p + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		panic(err)
	}
	funcs := template.FuncMap{
		"asset":    d.asset,
		"datetime": formatTime,
		"isoTime":  isoTime,
		"join":     strings.Join,
		"shortID":  func(id string) string { return id[:min(len(id), 8)] },
		"triple": func(parts ...string) string {
			var out []string
			for _, p := range parts {
				if p != "" {
					out = append(out, p)
				}
			}
			return strings.Join(out, ", ")
		},
		"tokenTable": func(toks []gatehouse.Token, revokeURL string, canRevoke bool, empty string) tokenTableView {
			return tokenTableView{Tokens: toks, RevokeURL: revokeURL, CanRevoke: canRevoke, Empty: empty}
		},
	}
	for _, name := range pageNames {
		t := template.New(name).Funcs(funcs)
		d.pages[name] = template.Must(t.ParseFS(webFS,
			"web/templates/layout.html",
			"web/templates/partials.html",
			"web/templates/"+name+".html"))
	}
	return d
}

// asset returns the versioned URL of a static file.
func (d *dashboard) asset(name string) (string, error) {
	u, ok := d.assets[name]
	if !ok {
		return "", gatehouse.Errorf(gatehouse.EINTERNAL, "no static asset %q", name)
	}
	return u, nil
}

// staticFiles serves the embedded assets. A request with the current
// version may be cached for good; anything else is revalidated.
func (d *dashboard) staticFiles() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(d.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		u, ok := d.assets[name]
		if !ok || name != path.Clean(name) {
			d.notFound(w, r)
			return
		}
		if r.URL.RawQuery != "" && "/static/"+name+"?"+r.URL.RawQuery == u {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

// view is what every page template receives.
type view struct {
	Title   string
	Section string // the active navigation entry
	User    *userView
	Nav     []navLink
	Notice  string
	Error   string
	Data    any
}

type userView struct {
	Name    string
	Initial string
}

type navLink struct {
	Label, Href string
	Active      bool
}

// dashHandler is a dashboard page for a logged-in user.
type dashHandler func(w http.ResponseWriter, r *http.Request, p *service.Principal) error

// page wraps a handler that needs a logged-in user: without a valid
// session cookie the browser goes to the login page. Like every API
// request, the request is recorded in the audit trail.
func (d *dashboard) page(h dashHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := d.principal(w, r)
		if p == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if err := d.svc.AdmitRequest(); err != nil {
			d.fail(w, r, p, err)
			return
		}
		d.svc.Touch(p, clientIP(r))
		rec := &statusRecorder{ResponseWriter: w}
		err := h(rec, r, p)
		if err != nil {
			d.fail(rec, r, p, err)
		}
		d.s.audit(r, p, rec.status(), err)
	}
}

// principal authenticates the session cookie, and only the cookie: an
// Authorization header means nothing to the dashboard. A cookie that no
// longer verifies (revoked, expired, not a session) is cleared.
func (d *dashboard) principal(w http.ResponseWriter, r *http.Request) *service.Principal {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	p, err := d.svc.Authenticate(r.Context(), c.Value)
	if err != nil || p.Kind() != gatehouse.KindSession {
		d.s.clearSessionCookie(w)
		return nil
	}
	return p
}

// render executes a page into a buffer first, so that a template error
// never sends half a page. Dashboard pages are never cached: they show
// permissions and tokens that change, and one of them a secret.
func (d *dashboard) render(w http.ResponseWriter, r *http.Request, p *service.Principal, status int, name string, v view) {
	if p != nil {
		v.User = &userView{Name: p.Subject(), Initial: initial(p.Subject())}
		v.Nav = d.nav(r, p, v.Section)
		if v.Notice == "" {
			v.Notice = notices[r.URL.Query().Get("notice")]
		}
	}
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		d.s.log.ErrorContext(r.Context(), "dashboard template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // a failed write means the browser went away
}

// notices are the fixed messages a redirect may ask for with ?notice=;
// the query names a message, it never carries text onto the page.
var notices = map[string]string{
	"revoked":    "Token revoked. It stops working immediately.",
	"created":    "Service account created.",
	"enabled":    "Account enabled.",
	"disabled":   "Account disabled. Its tokens stop working immediately.",
	"synced":     "Sync queued. A deploy agent will pick it up.",
	"logged-out": "You have been logged out.",

	// Trust policies.
	"trust-created": "Trust policy created.",
	"trust-updated": "Trust policy saved. Tokens issued under its old conditions were revoked.",
	"trust-deleted": "Trust policy deleted. Every token issued through it stopped working.",

	// Local users and passwords.
	"user-created":     "Local user created.",
	"password-set":     "Password set. Every session of the account was ended; its API tokens keep working.",
	"password-changed": "Password changed. Your other sessions were ended; this one and your API tokens keep working.",
}

// nav lists the sections the user may open. Admin sections appear only
// when the policy lets the user use them.
func (d *dashboard) nav(r *http.Request, p *service.Principal, active string) []navLink {
	links := []navLink{{Label: "User Info", Href: "/user-info"}}
	if d.svc.Can(p, "accounts", "get", "*") {
		links = append(links, navLink{Label: "Accounts", Href: "/accounts"})
	}
	if d.svc.SeesAnyProject(r.Context(), p) {
		links = append(links, navLink{Label: "Projects", Href: "/projects"})
	}
	if d.svc.SeesAnyApplication(r.Context(), p) {
		links = append(links, navLink{Label: "Applications", Href: "/applications"})
	}
	links = append(links, navLink{Label: "Audit", Href: "/audit"})
	if d.svc.Can(p, "settings", "get", "rbac") {
		links = append(links, navLink{Label: "RBAC policy", Href: "/settings/rbac"})
	}
	if d.svc.Can(p, "settings", "get", "trust") {
		links = append(links, navLink{Label: "Trust policies", Href: "/trust"})
	}
	if d.svc.Can(p, "accounts", "update", "*") {
		links = append(links, navLink{Label: "Break-glass", Href: "/break-glass"})
	}
	for i := range links {
		links[i].Active = links[i].Label == active
	}
	return links
}

// fail renders an error page. Internal causes are logged once; the page
// shows only the error's client-safe message.
func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, p *service.Principal, err error) {
	code := gatehouse.ErrorCode(err)
	if code == gatehouse.EINTERNAL {
		d.s.log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path)
	}
	title := "Something went wrong"
	switch code {
	case gatehouse.EFORBIDDEN:
		title = "Permission denied"
	case gatehouse.ENOTFOUND:
		title = "Not found"
	case gatehouse.EINVALID, gatehouse.EPRECONDITION, gatehouse.ECONFLICT:
		title = "That did not work"
	}
	d.render(w, r, p, StatusOf(err), "error", view{
		Title: title,
		Data:  errorView{Heading: title, Message: gatehouse.ErrorMessage(err)},
	})
}

// tokenTableView is the input of the shared token table.
type tokenTableView struct {
	Tokens    []gatehouse.Token
	RevokeURL string // prefix; the token id and "/revoke" follow
	CanRevoke bool
	Empty     string
}

type errorView struct {
	Heading, Message string
}

// notFound answers paths that are neither the API nor a dashboard page.
func (d *dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	var p *service.Principal
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if q, err := d.svc.Authenticate(r.Context(), c.Value); err == nil && q.Kind() == gatehouse.KindSession {
			p = q
		}
	}
	d.render(w, r, p, http.StatusNotFound, "error", view{
		Title: "Not found",
		Data:  errorView{Heading: "Page not found", Message: "There is no page at this address."},
	})
}

// seeOther redirects after a POST so that a reload never repeats it.
func seeOther(w http.ResponseWriter, r *http.Request, url string) {
	http.Redirect(w, r, url, http.StatusSeeOther)
}

// parseForm reads a url-encoded form body (its size is capped by the
// middleware).
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "the form could not be read")
	}
	return nil
}

func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return "?"
}

// formatTime shows a time in UTC for the dashboard; the zero time is a
// dash.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// randomID returns a hex id from r for one-time references.
func randomID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", gatehouse.Internal(err)
	}
	return hex.EncodeToString(b[:]), nil
}
