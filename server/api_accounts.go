package server

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListAccounts(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Account]{Items: items})
	return nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := s.svc.GetAccount(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.AccountCreate
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.svc.CreateAccount(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.AccountPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.svc.UpdateAccount(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteAccount(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) updatePassword(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.PasswordChange
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.svc.UpdatePassword(r.Context(), p, req, clientIP(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) canI(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	v := "no"
	if s.svc.CanI(p, r.PathValue("resource"), r.PathValue("action"), r.PathValue("object")) {
		v = "yes"
	}
	writeJSON(w, http.StatusOK, gatehouse.CanI{Value: v})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	nt, err := s.svc.CreateToken(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nt)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListTokens(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Token]{Items: items})
	return nil
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteToken(r.Context(), p, r.PathValue("name"), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) revokeAll(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var before time.Time
	if v := r.URL.Query().Get("issuedBefore"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "issuedBefore must be an RFC 3339 time")
		}
		before = t
	}
	n, err := s.svc.RevokeAll(r.Context(), p, r.PathValue("name"), before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
	return nil
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.RotateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	nt, err := s.svc.RotateToken(r.Context(), p, r.PathValue("name"), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nt)
	return nil
}
