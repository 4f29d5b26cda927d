package server

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

const exchangePath = "/api/v1/token/exchange"

func (s *Server) listTrustPolicies(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	list, err := s.svc.ListTrustPolicies(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.TrustPolicy]{Items: list})
	return nil
}

func (s *Server) getTrustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	tp, err := s.svc.GetTrustPolicy(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tp)
	return nil
}

func (s *Server) createTrustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.TrustPolicy
	if err := decode(r, &req); err != nil {
		return err
	}
	tp, err := s.svc.CreateTrustPolicy(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tp)
	return nil
}

func (s *Server) updateTrustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.TrustPolicy
	if err := decode(r, &req); err != nil {
		return err
	}
	tp, err := s.svc.UpdateTrustPolicy(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tp)
	return nil
}

func (s *Server) deleteTrustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteTrustPolicy(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) testTrustPolicy(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.TrustTest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.svc.TestTrustPolicy(r.Context(), p, r.PathValue("name"), req.Token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// exchange is RFC 8693 token exchange: a form, no credential but the
// subject token, and answers (refusals too) in the OAuth shape. The form
// is parsed here; what it is worth is the service's to decide.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	if err := s.exchangeForm(w, r); err != nil {
		writeOAuthError(w, err)
	}
}

func (s *Server) exchangeForm(w http.ResponseWriter, r *http.Request) error {
	bad := func(desc string) error {
		return &gatehouse.OAuthError{Code: gatehouse.OAuthInvalidRequest, Description: desc}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return bad("send the parameters as application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		// A subject token in a URL ends up in logs along the way.
		return bad("send the parameters in the request body, not the query string")
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &oauthTooLarge{}
		}
		return bad("the form body does not parse")
	}
	f := r.PostForm
	for k, vs := range f {
		if len(vs) > 1 {
			return bad("parameter " + truncate(k, 64) + " is given more than once")
		}
	}
	res, err := s.svc.Exchange(r.Context(), gatehouse.ExchangeRequest{
		GrantType:          f.Get("grant_type"),
		SubjectToken:       f.Get("subject_token"),
		SubjectTokenType:   f.Get("subject_token_type"),
		RequestedTokenType: f.Get("requested_token_type"),
		TrustPolicy:        f.Get("trust_policy"),
		ActorToken:         f.Get("actor_token"),
	}, clientIP(r), truncate(r.UserAgent(), 256))
	if err != nil {
		return err
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, res)
	return nil
}

// oauthTooLarge is a body over the general 1 MiB limit: 413, in the
// endpoint's own error shape.
type oauthTooLarge struct{}

func (*oauthTooLarge) Error() string { return "request body exceeds 1 MiB" }

// writeOAuthError answers a refused exchange: 400 with {error,
// error_description}, 413 for an oversized body, 503 and 500 for the
// store's and the server's own failures.
func writeOAuthError(w http.ResponseWriter, err error) {
	w.Header().Set("Pragma", "no-cache")
	var tooBig *oauthTooLarge
	if errors.As(err, &tooBig) {
		writeJSON(w, http.StatusRequestEntityTooLarge, gatehouse.OAuthError{Code: gatehouse.OAuthInvalidRequest, Description: tooBig.Error()})
		return
	}
	var oe *gatehouse.OAuthError
	if !errors.As(err, &oe) {
		oe = &gatehouse.OAuthError{Code: gatehouse.OAuthServerError, Description: "internal error"}
	}
	status := http.StatusBadRequest
	switch oe.Code {
	case gatehouse.OAuthUnavailable:
		status = http.StatusServiceUnavailable
	case gatehouse.OAuthServerError:
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, oe)
}
