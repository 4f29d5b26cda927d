package client

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// BenchmarkListTokens measures one request round trip on loopback,
// including encoding, transport and decoding a page of 100 tokens.
func BenchmarkListTokens(b *testing.B) {
	items := make([]gatehouse.Token, 100)
	for i := range items {
		items[i] = gatehouse.Token{ID: "5f0c6b2e-7d1a-4c1e-9a51-0e8f1b2c3d4e", Name: "ci", Kind: gatehouse.KindAPI, Account: "ci", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), CreatedBy: "admin"}
	}
	body, err := json.Marshal(gatehouse.List[gatehouse.Token]{Items: items})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	c, err := New(srv.URL, WithToken(testToken))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.ListTokens(ctx, "ci")
		if err != nil || len(got) != 100 {
			b.Fatalf("ListTokens: %d tokens, %v", len(got), err)
		}
	}
}

// BenchmarkDecodeError measures turning an error answer into *gatehouse.Error.
func BenchmarkDecodeError(b *testing.B) {
	h := http.Header{"Retry-After": {"30"}}
	body := []byte(`{"error":"too_many_requests","message":"too many failed logins"}`)
	b.ReportAllocs()
	for b.Loop() {
		if e := decodeError(http.StatusTooManyRequests, h, bytes.NewReader(body)); e.RetryAfter != 30*time.Second {
			b.Fatal(e)
		}
	}
}
