package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (s *Server) getRBAC(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	rb, err := s.svc.GetRBAC(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rb)
	return nil
}

func (s *Server) putRBAC(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.RBAC
	if err := decode(r, &req); err != nil {
		return err
	}
	rb, err := s.svc.PutRBAC(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rb)
	return nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	x, err := s.svc.Explain(p, q.Get("subject"), q.Get("resource"), q.Get("action"), q.Get("object"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	f := gatehouse.EventFilter{
		Actor:    q.Get("account"),
		TokenID:  q.Get("tokenId"),
		Type:     q.Get("type"),
		Action:   q.Get("action"),
		Decision: q.Get("decision"),
	}
	var err error
	if f.Since, err = queryTime(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(q.Get("until"), "until"); err != nil {
		return err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return gatehouse.Errorf(gatehouse.EINVALID, "limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	if f.Decision != "" && f.Decision != "allow" && f.Decision != "deny" {
		return gatehouse.Errorf(gatehouse.EINVALID, "decision must be allow or deny")
	}
	list, err := s.svc.ListEvents(r.Context(), p, f, q.Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func queryTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, gatehouse.Errorf(gatehouse.EINVALID, "%s must be an RFC 3339 time", name)
	}
	return t, nil
}

func (s *Server) bulkRevoke(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.BulkRevoke
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.svc.BulkRevoke(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// introspect implements RFC 7662 for an authenticated caller: the form
// is parsed here, the answer decided by the service.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := r.ParseForm(); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid form body")
	}
	writeJSON(w, http.StatusOK, s.svc.Introspect(r.Context(), p, r.PostForm.Get("token")))
	return nil
}
