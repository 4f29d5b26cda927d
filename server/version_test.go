package server_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestVersionIsPublic: GET /api/version answers the server's version, Go
// version and platform to anyone, whatever credential comes with the
// request (none, a valid one, a refused one), and records no audit event:
// it reads no credential at all.
func TestVersionIsPublic(t *testing.T) {
	e := newEnv(t, withVersion("v1.2.3"))
	before := len(requestEvents(e, ""))
	for name, tok := range map[string]string{"no credential": "", "admin": e.admin, "refused": "gatehouse:not-a-token"} {
		status, body := e.do("GET", "/api/version", tok, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s, want 200", name, status, body)
		}
		var got gatehouse.VersionInfo
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v: %s", name, err, body)
		}
		if got.Version != "v1.2.3" || got.GoVersion != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("%s: version %+v, want v1.2.3 built by %s for %s/%s", name, got, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
	}
	// requestEvents is itself an audited request: one more, no others.
	if after := len(requestEvents(e, "")); after != before+1 {
		t.Errorf("%d request events after asking the version, want %d (the audit query's own)", after, before+1)
	}
}

// TestVersionDefaultsToDev: a server given no version says "dev" (or the
// module version of a `go install`ed binary), never an empty string.
func TestVersionDefaultsToDev(t *testing.T) {
	e := newEnv(t)
	var got gatehouse.VersionInfo
	e.call("GET", "/api/version", "", nil, 200, &got)
	if got.Version == "" {
		t.Errorf("version %+v, want a non-empty version", got)
	}
}
