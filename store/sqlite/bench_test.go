package sqlite

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

var benchT0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// benchToken returns token i of a mix like a busy server's: two sessions
// for each scoped api token and each project token.
func benchToken(i int) gatehouse.Token {
	k := gatehouse.Token{
		ID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		Name:      "ci",
		Kind:      gatehouse.KindSession,
		Account:   fmt.Sprintf("user%d", i%100),
		IssuedAt:  benchT0.Add(time.Duration(i) * time.Second),
		ExpiresAt: benchT0.Add(12 * time.Hour),
		CreatedBy: "admin",
		Hash:      make([]byte, 32),
	}
	switch i % 4 {
	case 2:
		k.Kind = gatehouse.KindAPI
		k.Scopes = []gatehouse.Scope{{Resource: "applications", Action: "get", Object: "web/*"}}
	case 3:
		k.Kind, k.Account, k.Project, k.Role = gatehouse.KindProject, "", "web", "deployer"
	}
	return k
}

// BenchmarkCreateToken: one token per write transaction, as minting does.
func BenchmarkCreateToken(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		k := benchToken(i)
		i++
		if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateToken(ctx, k) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateTokenParallel: minting from many requests at once; the
// writers queue for SQLite's one write lock.
func BenchmarkCreateTokenParallel(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	var next atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := benchToken(int(next.Add(1)))
			if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.CreateToken(ctx, k) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkForEachToken: the start-up cache load of 100k tokens.
func BenchmarkForEachToken(b *testing.B) {
	const n = 100_000
	s, _ := openTemp(b)
	ctx := b.Context()
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		for i := range n {
			if err := tx.CreateToken(ctx, benchToken(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		count := 0
		if err := s.ForEachToken(ctx, func(gatehouse.Token) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("got %d tokens, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
}

// BenchmarkAppendEvents: one batch of 100 events, as the audit batcher
// writes them.
func BenchmarkAppendEvents(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	batch := make([]gatehouse.Event, 100)
	for i := range batch {
		batch[i] = gatehouse.Event{
			Time: benchT0.Add(time.Duration(i) * time.Millisecond), Type: gatehouse.EventRequest,
			Actor: "alice", TokenID: "00000000-0000-4000-8000-000000000001", TokenKind: gatehouse.KindAPI,
			Method: "GET", Path: "/api/v1/applications/shop", Resource: "applications", Action: "get",
			Object: "web/shop", Decision: "allow", Status: 200, RemoteAddr: "192.0.2.1:5555", UserAgent: "gatehouse-cli/1.0",
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AppendEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
}

// BenchmarkTouchTokens: one flush of 100 token uses.
func BenchmarkTouchTokens(b *testing.B) {
	const n = 10_000
	s, _ := openTemp(b)
	ctx := b.Context()
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		for i := range n {
			if err := tx.CreateToken(ctx, benchToken(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	uses := make([]gatehouse.TokenUse, 100)
	round := 0
	for b.Loop() {
		round++
		for i := range uses {
			uses[i] = gatehouse.TokenUse{ID: benchToken((round*100 + i) % n).ID, At: benchT0.Add(time.Duration(round) * time.Minute), From: "192.0.2.1"}
		}
		if err := s.TouchTokens(ctx, uses); err != nil {
			b.Fatal(err)
		}
	}
}
