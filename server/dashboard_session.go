package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

type loginView struct {
	Username string
	SSO      string // the SSO button's label; "" without SSO
	// SSOLogout, after an SSO user's logout, ends the session at the
	// identity provider too (RP-initiated logout).
	SSOLogout string
}

// home is the login form, or for a logged-in user the User Info page.
func (d *dashboard) home(w http.ResponseWriter, r *http.Request) {
	if p := d.principal(w, r); p != nil {
		seeOther(w, r, "/user-info")
		return
	}
	v := view{Title: "Log in", Data: loginView{SSO: d.svc.SSOName()}}
	if r.URL.Query().Get("notice") == "logged-out" {
		v.Notice = notices["logged-out"]
	}
	d.render(w, r, nil, http.StatusOK, "login", v)
}

// login checks the password form, sets the session cookie and goes to
// the User Info page; a failure shows the form again with the reason.
func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		d.fail(w, r, nil, err)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	again := func(status int, msg string) {
		d.render(w, r, nil, status, "login", view{Title: "Log in", Error: msg, Data: loginView{Username: username, SSO: d.svc.SSOName()}})
	}
	if username == "" || password == "" {
		again(http.StatusBadRequest, "Enter your username and password.")
		return
	}
	nt, err := d.svc.Login(r.Context(), username, password, clientIP(r))
	if err != nil {
		switch gatehouse.ErrorCode(err) {
		case gatehouse.EUNAUTHORIZED:
			again(http.StatusUnauthorized, "Invalid username or password.")
		case gatehouse.ETHROTTLED:
			secs := retrySeconds(err)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			again(http.StatusTooManyRequests, "Too many failed login attempts. Try again in "+plural(secs, "second")+".")
		default:
			if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
				d.s.log.ErrorContext(r.Context(), "dashboard login", "err", err)
			}
			again(StatusOf(err), "Login failed: "+gatehouse.ErrorMessage(err)+".")
		}
		return
	}
	d.s.setSessionCookie(w, nt)
	seeOther(w, r, "/user-info")
}

// logout revokes the session token itself, not just the cookie. An SSO
// user whose provider advertises an end_session_endpoint is offered to
// log out there too.
func (d *dashboard) logout(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	idpLogout := d.svc.SSOLogoutURL(p)
	if err := d.svc.Logout(r.Context(), p); err != nil {
		return err
	}
	d.s.clearSessionCookie(w)
	if idpLogout != "" {
		d.render(w, r, nil, http.StatusOK, "login", view{Title: "Log in", Notice: notices["logged-out"],
			Data: loginView{SSO: d.svc.SSOName(), SSOLogout: idpLogout}})
		return nil
	}
	seeOther(w, r, "/?notice=logged-out")
	return nil
}

// retrySeconds is the whole number of seconds a throttled caller waits.
func retrySeconds(err error) int64 {
	var e *gatehouse.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return int64((e.RetryAfter + time.Second - 1) / time.Second)
	}
	return 1
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
