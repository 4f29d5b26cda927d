package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/bench/internal/fixture"
	"github.com/gatehouse/gatehouse/internal/logbuf"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// BenchmarkServe measures what Gatehouse's own code costs per request, the
// rows of bench/http without net/http and the kernel: the real handler
// (server.New, every middleware, the JSON access log through logbuf to
// io.Discard, the audit trail on, metrics registered) over a SQLite store
// with the 1,000-line policy and 50 forward-auth routes. The difference
// between a row and healthz is what authentication, the decision, the
// audit event and the answer cost. bench/http measures the same rows over
// HTTP, as users meet them.
func BenchmarkServe(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := fixture.Accounts(ctx, st); err != nil {
		b.Fatal(err)
	}
	toks, err := fixture.Tokens(ctx, st, "gatehouse", 1000, 1)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	err = st.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.CreateProject(ctx, gatehouse.Project{Name: "team-a", Roles: []gatehouse.ProjectRole{}, CreatedAt: now}); err != nil {
			return err
		}
		return tx.CreateApplication(ctx, gatehouse.Application{Name: "web", Project: "team-a", CreatedAt: now,
			Spec:   gatehouse.AppSpec{RepoURL: "https://git.example.com/team-a/web.git", Path: "deploy", TargetRevision: "main", Destination: gatehouse.AppDestination{Server: "https://kubernetes.default.svc", Namespace: "web"}},
			Status: gatehouse.AppStatus{Sync: "Unknown", Health: "Unknown"}})
	})
	if err != nil {
		b.Fatal(err)
	}
	logw := logbuf.New(io.Discard, logbuf.DefaultInterval, logbuf.DefaultMaxBytes)
	b.Cleanup(func() { logw.Close() })
	log := slog.New(slog.NewJSONHandler(logw, nil))
	metrics := service.NewMetrics(prometheus.NewRegistry())
	svc, err := service.New(ctx, service.Options{Store: st, Instance: "gatehouse", Logger: log, Metrics: metrics,
		RBAC: gatehouse.RBAC{PolicyCSV: fixture.Policy(policyLines)}})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(runCtx, time.Minute) }()
	b.Cleanup(func() { stop(); <-done })
	opts := server.Options{Service: svc, Logger: log, LogWriter: logw, Metrics: metrics}
	for i := range 50 {
		opts.ForwardAuth = append(opts.ForwardAuth, server.Route{Match: fmt.Sprintf("GET /svc-%d/{project}/{app}/", i),
			Resource: "applications", Action: "get", Object: "{project}/{app}"})
	}
	h := server.New(opts)

	bearer := "Bearer " + toks[0]
	rows := []struct {
		name, path string
		header     http.Header
	}{
		{"healthz", "/healthz", http.Header{}},
		{"userinfo", "/api/v1/session/userinfo", http.Header{"Authorization": {bearer}}},
		{"application", "/api/v1/applications/web", http.Header{"Authorization": {bearer}}},
		{"forward-auth", "/api/v1/auth/verify", http.Header{"Authorization": {bearer},
			"X-Original-Method": {"GET"}, "X-Original-Uri": {"/svc-25/team-a/web/index.html"}}},
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+row.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header = row.header
			req.Header.Set("User-Agent", "wrk")
			w := &discardWriter{}
			b.ReportAllocs()
			for b.Loop() {
				// net/http gives every request a fresh header map and
				// routing state; so does this loop.
				w.h, w.code = http.Header{}, 0
				r := *req
				r.Pattern = ""
				h.ServeHTTP(w, &r)
				if w.code != http.StatusOK {
					b.Fatalf("%s: %d", row.path, w.code)
				}
			}
		})
	}
}

// discardWriter is the least a ResponseWriter can be.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
