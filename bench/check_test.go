package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/bench/internal/argo"
	"github.com/gatehouse/gatehouse/bench/internal/fixture"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const policyLines = 1000

// world is a loaded service with n live tokens and a sample of them.
type world struct {
	svc    *service.Service
	tokens []string
}

var (
	worldsMu sync.Mutex
	worlds   = map[int]*world{}
)

// loadWorld builds (once per process) a service over a SQLite store with
// n tokens and the 1,000-line policy, loaded the way a restart loads it.
func loadWorld(b *testing.B, n int) *world {
	b.Helper()
	worldsMu.Lock()
	defer worldsMu.Unlock()
	if w := worlds[n]; w != nil {
		return w
	}
	ctx := context.Background()
	dir, err := mkdirTemp()
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := fixture.Accounts(ctx, st); err != nil {
		b.Fatal(err)
	}
	sample, err := fixture.Tokens(ctx, st, "gatehouse", n, 1024)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := service.New(ctx, service.Options{
		Store: st, RBAC: gatehouse.RBAC{PolicyCSV: fixture.Policy(policyLines)}, AuditDisabled: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	w := &world{svc: svc, tokens: sample}
	worlds[n] = w
	return w
}

// BenchmarkCheck measures the full request check — parse, cache lookup,
// constant-time compare, policy decision — against the floor and against
// the Argo CD approach, on the same request and the same policy.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()

	b.Run("floor-sha256+map+compare", func(b *testing.B) {
		secrets := make([][32]byte, 1024)
		m := make(map[[16]byte][32]byte, 10000)
		ids := make([][16]byte, len(secrets))
		for i := range 10000 {
			var id [16]byte
			var sec [32]byte
			rand.Read(id[:])
			rand.Read(sec[:])
			m[id] = sha256.Sum256(sec[:])
			if i < len(secrets) {
				ids[i], secrets[i] = id, sec
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			k := i % len(secrets)
			h := sha256.Sum256(secrets[k][:])
			want := m[ids[k]]
			if subtle.ConstantTimeCompare(h[:], want[:]) != 1 {
				b.Fatal("mismatch")
			}
		}
	})

	for _, n := range []int{10_000, 1_000_000} {
		name := fmt.Sprintf("gatehouse-%dk-tokens", n/1000)
		b.Run(name+"-warm", func(b *testing.B) {
			w := loadWorld(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			var p service.Principal // the server keeps it in its per-request state
			for i := 0; b.Loop(); i++ {
				err := w.svc.AuthenticateInto(ctx, w.tokens[i%len(w.tokens)], &p)
				if err != nil || !w.svc.Can(&p, fixture.Resource, fixture.Action, fixture.Object) {
					b.Fatalf("check failed: %v", err)
				}
			}
		})
		// Cold: every question is new to the decision cache (a distinct
		// object each time), so the policy is evaluated from its compiled
		// rules on every iteration.
		b.Run(name+"-cold", func(b *testing.B) {
			w := loadWorld(b, n)
			objects := make([]string, 1<<15)
			for i := range objects {
				objects[i] = fmt.Sprintf("team-a/cold-%d-%d", n, i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var p service.Principal
			for i := 0; b.Loop(); i++ {
				err := w.svc.AuthenticateInto(ctx, w.tokens[i%len(w.tokens)], &p)
				if err != nil || !w.svc.Can(&p, fixture.Resource, fixture.Action, objects[i%len(objects)]) {
					b.Fatalf("check failed: %v", err)
				}
			}
		})
	}

	b.Run("argocd-jwt-hs256+casbin-cached", func(b *testing.B) {
		key := make([]byte, 32)
		rand.Read(key)
		signed := make([]string, 1024)
		tokenSet := map[string]struct{}{} // the account's token ids
		for i := range signed {
			jti := fmt.Sprintf("id-%d", i)
			tokenSet[jti] = struct{}{}
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
				Subject: fixture.Subject + ":apiKey", ID: jti, Issuer: "argocd",
				IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(12 * time.Hour)),
			}).SignedString(key)
			if err != nil {
				b.Fatal(err)
			}
			signed[i] = s
		}
		e := argoEnforcer(b, fixture.Policy(policyLines))
		parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		keyFunc := func(*jwt.Token) (any, error) { return key, nil }
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			var claims jwt.RegisteredClaims
			if _, err := parser.ParseWithClaims(signed[i%len(signed)], &claims, keyFunc); err != nil {
				b.Fatal(err)
			}
			if _, ok := tokenSet[claims.ID]; !ok {
				b.Fatal("unknown token id")
			}
			sub, _, _ := strings.Cut(claims.Subject, ":")
			ok, err := e.Enforce(sub, fixture.Resource, fixture.Action, fixture.Object)
			if err != nil || !ok {
				b.Fatalf("enforce: %v %v", ok, err)
			}
		}
	})
}

// argoEnforcer is the Argo CD-style enforcer of bench/internal/argo (the
// one the HTTP comparison server uses) over policy.
func argoEnforcer(b *testing.B, policy string) *casbin.SyncedCachedEnforcer {
	b.Helper()
	e, err := argo.Enforcer(policy)
	if err != nil {
		b.Fatal(err)
	}
	return e
}
