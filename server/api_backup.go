package server

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/service"
)

// The server's write timeout is for JSON answers. A backup gets
// backupPrepare to take and hash the copy, then as long as sending it
// takes at backupRate (the slowest a download may go), plus a minute.
const (
	backupPrepare = 10 * time.Minute
	backupRate    = 1 << 20 // bytes per second
)

// backup streams a consistent copy of the store (GET /api/v1/admin/backup)
// as application/octet-stream, with its length and its SHA-256
// (Repr-Digest, RFC 9530) so that a client can tell a whole copy from a cut
// one. The service decides who may and records it.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(backupPrepare))
	b, err := s.svc.Backup(r.Context(), p, clientIP(r))
	if err != nil {
		return err
	}
	defer b.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+backupFilename(b.TakenAt)+`"`)
	h.Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(b.SHA256[:])+":")
	h.Set("Cache-Control", "no-store")
	_ = rc.SetWriteDeadline(time.Now().Add(time.Minute + time.Duration(b.Size()/backupRate)*time.Second))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, b); err != nil {
		// The status is sent; the client sees a body shorter than its
		// Content-Length.
		s.log.WarnContext(r.Context(), "backup download cut short", "request_id", RequestID(r.Context()), "err", err)
	}
	return nil
}

// backupFilename is the name a backup taken at t is offered under.
func backupFilename(t time.Time) string {
	return "gatehouse-backup-" + t.UTC().Format("20060102T150405Z") + ".db"
}
