package server

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// verifyAudit answers GET /api/v1/audit/verify: the service recomputes the
// audit chain (and checks the anchor, if one is given) and decides who may
// ask; a chain that does not verify is a 200 with "ok": false, since the
// check itself worked.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	for k, vs := range q {
		if k != "anchor" {
			return gatehouse.Errorf(gatehouse.EINVALID, "unknown parameter %q (the only one is anchor)", truncate(k, 64))
		}
		if len(vs) != 1 {
			return gatehouse.Errorf(gatehouse.EINVALID, "anchor given %d times; give it once", len(vs))
		}
	}
	res, err := s.svc.VerifyAudit(r.Context(), p, q.Get("anchor"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
