package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The leak-report lookup by hash (TokenFilter.TextHash) and the family
// revocation (TokenFilter.Family) run on every unauthenticated leak
// report entry and every reuse: the migration gives them partial indexes
// (WHERE length(text_hash) > 0, WHERE family is not empty), but SQLite uses a
// partial index only when the query's WHERE implies the index's, and
// "text_hash = ?" does not imply "length(text_hash) > 0" (nor
// "family = ? OR id = ?" imply that family is not empty). Both queries scan the
// whole tokens table.
func TestAdversaryLifecycleLookupsUseTheirIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, f := range map[string]gatehouse.TokenFilter{
		"text hash": {TextHash: make([]byte, 32)},
		"family":    {Family: "0193e8a0-0000-7000-8000-000000000000"},
	} {
		w := tokenWhere(f)
		q := `EXPLAIN QUERY PLAN SELECT ` + tokenCols + ` FROM tokens` + w.String() + ` ORDER BY issued_at DESC, id`
		rows, err := s.db.QueryContext(ctx, q, w.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		t.Logf("%s: %s", name, joined)
		if strings.Contains(joined, "SCAN tokens") && !strings.Contains(joined, "USING") {
			t.Errorf("the %s lookup scans the whole tokens table: %s", name, joined)
		}
	}
}
