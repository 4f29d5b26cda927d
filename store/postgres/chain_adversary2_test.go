package postgres

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/storetest"
)

// TestAdversary2ChainOddTextPostgres: NUL bytes, invalid UTF-8 and
// unusual Unicode in any field, through both append paths, verify.
func TestAdversary2ChainOddTextPostgres(t *testing.T) {
	pg.SkipIfMissing(t)
	s, _, _ := openStore(t)
	ctx := t.Context()
	evs := []gatehouse.Event{
		{Time: time.Unix(1700000000, 5), Type: "request", Actor: "a\x00b", Detail: "\xff\xfe", UserAgent: "x\x00"},
		{Time: time.Unix(1700000001, 5), Type: "request", Actor: "\xc3", Path: "/\x00/\x00", Detail: string([]byte{0, 0, 0, 1}), TokenKind: "\x00"},
		{Time: time.Unix(1700000002, 5), Type: "request\x00", Actor: "é\u0301", Detail: "\U0010FFFF\ufffd\xed\xa0\x80"},
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.Tx(ctx, func(tx gatehouse.Tx) error { return tx.AppendEvents(ctx, evs) }); err != nil {
		t.Fatal(err)
	}
	if res := storetest.VerifyChain(t, s, 2, nil); !res.OK {
		t.Fatalf("events with NUL / invalid UTF-8 do not verify on PostgreSQL: %+v", res)
	}
}
