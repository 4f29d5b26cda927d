package server

import "net/http"

// versionInfo answers GET /api/version with what the server binary is. It is
// public, as Argo CD's is: the version is no secret (the dashboard's
// assets betray it anyway), and `gatehouse version` must work before a
// login and with an expired token. It reads no credential, so it records
// no audit event and touches no token.
func (s *Server) versionInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.build)
}
