package server

import (
	"errors"
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

// auditParams are the query parameters of GET /api/v1/audit. Any other is
// refused rather than ignored: a misspelt filter would widen the answer.
var auditParams = map[string]bool{
	"actor": true, "account": true, "tokenId": true, "type": true, "resource": true, "action": true,
	"decision": true, "route": true, "status": true, "since": true, "until": true, "limit": true, "cursor": true,
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	for k, vs := range q {
		if !auditParams[k] {
			return gatehouse.Errorf(gatehouse.EINVALID, "unknown audit filter %q (filters: actor, account, tokenId, type, resource, action, decision, route, status, since, until, limit, cursor)", truncate(k, 64))
		}
		if len(vs) != 1 {
			return gatehouse.Errorf(gatehouse.EINVALID, "audit filter %q given %d times; give it once", k, len(vs))
		}
	}
	f := gatehouse.EventFilter{
		Actor:    q.Get("actor"),
		Account:  q.Get("account"),
		TokenID:  q.Get("tokenId"),
		Type:     q.Get("type"),
		Resource: q.Get("resource"),
		Action:   q.Get("action"),
		Decision: q.Get("decision"),
		Route:    q.Get("route"),
	}
	var err error
	if v := q.Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 || strconv.Itoa(n) != v {
			return gatehouse.Errorf(gatehouse.EINVALID, "status must be an HTTP status code from 100 to 599")
		}
		f.Status = n
	}
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
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return gatehouse.Errorf(gatehouse.ETOOLARGE, "request body exceeds 1 MiB")
		}
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid form body")
	}
	writeJSON(w, http.StatusOK, s.svc.Introspect(r.Context(), p, r.PostForm.Get("token"), clientIP(r)))
	return nil
}
