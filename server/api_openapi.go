package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the API, written by hand and kept
// next to the route table. The tests hold the two to each other and
// validate the server's real answers against its schemas.
//
//go:embed openapi.json
var openAPI []byte

// openAPIDocument answers GET /api/v1/openapi.json. It is public, like
// /api/version: the shape of the API is no secret, and a client generator
// needs it before it has a token. It reads no credential and records no
// audit event.
func (s *Server) openAPIDocument(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// A failed write means the client went away; there is no one to tell.
	_, _ = w.Write(openAPI)
}
