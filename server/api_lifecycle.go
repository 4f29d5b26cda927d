package server

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// reportLeaked takes a leak report without a credential: whoever found a
// token may report it. The answer never says whether anything matched.
func (s *Server) reportLeaked(w http.ResponseWriter, r *http.Request) {
	var req gatehouse.LeakReport
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.svc.ReportLeaked(r.Context(), clientIP(r), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"received": n})
}

func (s *Server) selfRotate(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.RotateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	nt, err := s.svc.SelfRotate(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nt)
	return nil
}
