package client

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// BackupInfo describes a backup the server handed out.
type BackupInfo struct {
	Size   int64
	SHA256 [32]byte
	// Filename is the name the server offered it under
	// (Content-Disposition), "" if it offered none.
	Filename string
}

// Backup downloads a consistent copy of the server's store (GET
// /api/v1/admin/backup) into w and checks that it arrived whole: as long
// as the server said, with the SHA-256 it said (Repr-Digest). On an error
// w may hold part of it, which the caller must discard. It needs settings,
// update, backup; a server on PostgreSQL refuses with EPRECONDITION (back
// it up with pg_dump), one taking another backup with ETHROTTLED.
func (c *Client) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/api/v1/admin/backup"}, "application/octet-stream")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/octet-stream" {
		return info, fmt.Errorf("client: backup: the server answered %q, not a backup (application/octet-stream)", mt)
	}
	want, ok := parseSHA256Digest(resp.Header.Get("Repr-Digest"))
	if !ok {
		return info, fmt.Errorf("client: backup: the answer has no sha-256 Repr-Digest to check it against")
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		info.Filename = params["filename"]
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return info, fmt.Errorf("client: backup: %w", c.transportError(err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return info, fmt.Errorf("client: backup: received %d of %d bytes", n, resp.ContentLength)
	}
	info.Size = n
	h.Sum(info.SHA256[:0])
	if subtle.ConstantTimeCompare(info.SHA256[:], want[:]) != 1 {
		return info, fmt.Errorf("client: backup: the copy received does not have the SHA-256 the server sent: it was damaged on the way")
	}
	return info, nil
}

// parseSHA256Digest reads the sha-256 member of a Repr-Digest field
// (RFC 9530: sha-256=:<base64>:).
func parseSHA256Digest(field string) ([32]byte, bool) {
	var sum [32]byte
	for member := range strings.SplitSeq(field, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || !strings.EqualFold(k, "sha-256") || len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v[1 : len(v)-1])
		if err != nil || len(b) != len(sum) {
			return sum, false
		}
		copy(sum[:], b)
		return sum, true
	}
	return sum, false
}
