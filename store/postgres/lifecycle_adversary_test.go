package postgres

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// PostgreSQL, like SQLite, uses a partial index only when it can prove
// the query's condition implies the index's: "text_hash = $1" does not
// imply "length(text_hash) > 0", so the leak-report lookup by hash scans
// the tokens table whatever its size.
func TestAdversaryTextHashLookupUsesItsIndex(t *testing.T) {
	pg.SkipIfMissing(t)
	s, _, _ := openStore(t)
	ctx := context.Background()
	now := time.Now()
	err := s.Tx(ctx, func(tx gatehouse.Tx) error {
		if err := tx.CreateAccount(ctx, gatehouse.Account{Name: "ci", Enabled: true, Capabilities: []gatehouse.Capability{"apiKey"}}); err != nil {
			return err
		}
		for i := range 20000 {
			h, th := make([]byte, 32), make([]byte, 32)
			rand.Read(h)
			rand.Read(th)
			if err := tx.CreateToken(ctx, gatehouse.Token{ID: "t" + strings.Repeat("x", 3) + itoa(i), Name: "t", Kind: gatehouse.KindAPI, Account: "ci",
				IssuedAt: now, CreatedBy: "admin", Hash: h, TextHash: th}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE tokens`); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]gatehouse.TokenFilter{
		"text hash": {TextHash: make([]byte, 32)},
		"family":    {Family: "t-nope"},
	} {
		w := tokenWhere(f)
		rows, err := s.pool.Query(ctx, `EXPLAIN SELECT `+tokenCols+` FROM tokens`+w.String()+` ORDER BY issued_at DESC, id`, w.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, strings.TrimSpace(line))
		}
		rows.Close()
		joined := strings.Join(plan, " | ")
		t.Logf("%s: %s", name, joined)
		if strings.Contains(joined, "Seq Scan on tokens") {
			t.Errorf("the %s lookup scans the whole tokens table: %s", name, joined)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
