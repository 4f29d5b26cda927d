package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// statusBody is the answer of the health and readiness checks.
type statusBody struct {
	Status string `json:"status"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "ready"})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowedMethods(r); allow != "" {
		err := gatehouse.Errorf(gatehouse.EMETHOD, "%s is not allowed on %s; it takes %s", r.Method, r.URL.Path, allow)
		err.Allow = allow
		s.writeError(w, r, err)
		return
	}
	s.writeError(w, r, gatehouse.Errorf(gatehouse.ENOTFOUND, "no such API path: %s %s", r.Method, r.URL.Path))
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.Authorize(p, "settings", "get", "metrics"); err != nil {
		return err
	}
	if s.promh == nil {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "metrics are served on the metrics listener")
	}
	s.promh.ServeHTTP(w, r)
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req gatehouse.LoginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		s.writeError(w, r, gatehouse.Errorf(gatehouse.EINVALID, "username and password are required"))
		return
	}
	nt, err := s.svc.Login(r.Context(), req.Username, req.Password, clientIP(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, nt)
	writeJSON(w, http.StatusOK, map[string]string{"token": nt.Token})
}

func (s *Server) setSessionCookie(w http.ResponseWriter, nt gatehouse.NewToken) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    nt.Token,
		Path:     "/",
		Expires:  nt.ExpiresAt,
		HttpOnly: true,
		Secure:   s.tls,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.tls, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.Logout(r.Context(), p); err != nil {
		return err
	}
	s.clearSessionCookie(w)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// userInfo answers {"loggedIn": false} to a caller with no credential and
// 401 to one with a bad credential.
func (s *Server) userInfo(w http.ResponseWriter, r *http.Request) {
	_, present, _ := credential(r)
	if !present {
		writeAnswer(w, http.StatusOK, userInfoJSON{LoggedIn: false})
		return
	}
	s.api(func(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
		writeAnswer(w, http.StatusOK, userInfoJSON(s.svc.UserInfo(p)))
		return nil
	})(w, r)
}

// startDeviceLogin starts an SSO login with the device authorization
// grant, for a CLI on a machine without a browser. The body is {}.
func (s *Server) startDeviceLogin(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	dl, err := s.svc.StartDeviceLogin(r.Context(), clientIP(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, dl)
}

// pollDeviceLogin answers a device login's poll: 202 with the seconds to
// wait while the user has not finished at the identity provider, then
// the session as a password login answers it (no cookie: the caller is a
// CLI).
func (s *Server) pollDeviceLogin(w http.ResponseWriter, r *http.Request) {
	var req gatehouse.DevicePoll
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Handle == "" {
		s.writeError(w, r, gatehouse.Errorf(gatehouse.EINVALID, "handle is required"))
		return
	}
	ans, err := s.svc.PollDeviceLogin(r.Context(), req.Handle, clientIP(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ans.Pending {
		writeJSON(w, http.StatusAccepted, gatehouse.DevicePending{Status: "authorization_pending", Interval: ans.Interval})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": ans.Session.Token})
}
