package server

import (
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// SSO login through the OpenID provider: GET /auth/login starts it (the
// login page's "Log in with <name>" button, or the CLI's browser with
// cli_port and cli_key), GET /auth/callback finishes it. The service does
// the protocol and decides; these handlers move its answers between
// cookies, redirects and pages.

// The SSO login's cookies: the sealed login state, from /auth/login to
// the callback, and a CLI login's sealed confirmation, from the callback's
// confirmation page to its answer. With an https redirect URL they are
// __Host- cookies (Secure, Path=/, no Domain): no other host, a sibling
// subdomain included, can set or overwrite them, so nobody can plant a
// login state of their own in a victim's browser (login CSRF). Only a
// plain-http loopback redirect URL (local development; the configuration
// allows no other http URL) uses the unprefixed names, scoped to their
// paths. Both are SameSite=Lax: the callback is a top-level navigation
// from the provider's site, on which a Strict cookie would not be sent;
// the confirmation is answered only by POST, on which no other site's
// form gets a Lax cookie sent (and the cross-origin protection refuses
// such a POST anyway).
type ssoCookieSpec struct {
	name, path string
	secure     bool
	sameSite   http.SameSite
}

func (d *dashboard) ssoCookie(cli bool) ssoCookieSpec {
	c := ssoCookieSpec{name: "gatehouse.sso", path: "/auth/callback", sameSite: http.SameSiteLaxMode, secure: d.s.tls}
	if cli {
		c = ssoCookieSpec{name: "gatehouse.sso-cli", path: "/auth/cli", sameSite: http.SameSiteLaxMode, secure: d.s.tls}
	}
	if d.svc.SSOSecureCookies() {
		c.name, c.path, c.secure = "__Host-"+c.name, "/", true
	}
	return c
}

func (c ssoCookieSpec) set(w http.ResponseWriter, value string, ttl time.Duration) {
	maxAge := int(ttl / time.Second)
	if value == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: value, Path: c.path, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: c.sameSite,
	})
}

func (c ssoCookieSpec) get(r *http.Request) string {
	if ck, err := r.Cookie(c.name); err == nil {
		return ck.Value
	}
	return ""
}

// ssoLogin starts an SSO login.
func (d *dashboard) ssoLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var req service.SSOStartRequest
	if v := q.Get("cli_port"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil {
			d.ssoFailed(w, r, gatehouse.Errorf(gatehouse.EINVALID, "cli_port must be a number"))
			return
		}
		req.CLIPort, req.CLIKey = port, q.Get("cli_key")
	}
	start, err := d.svc.StartSSO(r.Context(), req)
	if err != nil {
		d.ssoFailed(w, r, err)
		return
	}
	d.ssoCookie(false).set(w, start.State, service.SSOStateTTL())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, start.URL, http.StatusFound)
}

// ssoCallback finishes an SSO login and sets the same session cookie as a
// password login.
func (d *dashboard) ssoCallback(w http.ResponseWriter, r *http.Request) {
	ck := d.ssoCookie(false)
	state := ck.get(r)
	// The state is spent whatever happens next.
	ck.set(w, "", 0)
	q := r.URL.Query()
	res, err := d.svc.FinishSSO(r.Context(), state, service.SSOCallback{
		Code: q.Get("code"), State: q.Get("state"),
		Error: q.Get("error"), ErrorDesc: q.Get("error_description"),
	}, clientIP(r))
	if err != nil {
		d.ssoFailed(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if res.CLI != nil {
		// A CLI login: whoever made the link chose the CLI's key, so the
		// browser's user confirms before the session is sealed to it.
		// This browser gets no session cookie.
		d.ssoCookie(true).set(w, res.CLI.Pending, service.SSOCLIPendingTTL())
		d.render(w, r, nil, http.StatusOK, "sso_cli", view{Title: "Log in the CLI", Data: ssoCLIView{Account: res.CLI.Account, Port: res.CLI.Port}})
		return
	}
	d.s.setSessionCookie(w, res.Session)
	// A page of our own, not a redirect, moves on to the dashboard: the
	// navigation began on the provider's site, and a browser does not
	// send the SameSite=Strict session cookie on a redirect chain that
	// began cross-site.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = ssoDone.Execute(w, nil)
}

type ssoCLIView struct {
	Account   string
	Port      int
	Cancelled bool
	Link      string // the loopback address that hands the session over
}

// ssoCLIConfirm answers the CLI login's confirmation page: Continue seals
// the session to the CLI's key and sends the browser to the loopback
// address; Cancel hands nothing over. Either way the confirmation is
// spent: the cookie is cleared here, and the service records the answer
// in the store, which refuses a copy of the cookie answered again. It is
// a POST from our own page: the global cross-origin protection refuses
// one from another site, whose form would not carry the SameSite=Lax
// confirmation cookie either.
func (d *dashboard) ssoCLIConfirm(w http.ResponseWriter, r *http.Request) {
	ck := d.ssoCookie(true)
	pending := ck.get(r)
	ck.set(w, "", 0)
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		d.ssoFailed(w, r, gatehouse.Errorf(gatehouse.EINVALID, "unreadable form"))
		return
	}
	if r.PostForm.Get("op") != "continue" {
		if err := d.svc.CancelCLILogin(r.Context(), pending); err != nil {
			d.ssoFailed(w, r, err)
			return
		}
		d.render(w, r, nil, http.StatusOK, "sso_cli", view{Title: "CLI login cancelled", Data: ssoCLIView{Cancelled: true}})
		return
	}
	link, err := d.svc.ConfirmCLILogin(r.Context(), pending, clientIP(r))
	if err != nil {
		d.ssoFailed(w, r, err)
		return
	}
	// A page, not a redirect: the dashboard's CSP (form-action 'self')
	// would stop a form submission's redirect to another origin.
	w.Header().Set("Refresh", "0; url="+link)
	d.render(w, r, nil, http.StatusOK, "sso_cli", view{Title: "Logged in the CLI", Data: ssoCLIView{Link: link}})
}

var ssoDone = template.Must(template.New("sso_done").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/user-info">
<title>Logged in · Gatehouse</title></head>
<body><p>Logged in. <a id="continue" href="/user-info">Continue to Gatehouse</a>.</p></body></html>
`))

// ssoFailed shows the login page with the reason.
func (d *dashboard) ssoFailed(w http.ResponseWriter, r *http.Request, err error) {
	if code := gatehouse.ErrorCode(err); code == gatehouse.EINTERNAL || code == gatehouse.EUNAVAILABLE {
		d.s.log.ErrorContext(r.Context(), "SSO login", "err", err)
	} else {
		d.s.log.InfoContext(r.Context(), "SSO login refused", "err", err)
	}
	d.render(w, r, nil, StatusOf(err), "login", view{
		Title: "Log in",
		Error: "SSO login failed: " + gatehouse.ErrorMessage(err),
		Data:  loginView{SSO: d.svc.SSOName()},
	})
}
