package postgres

import (
	"context"
	"testing"
)

// One holder at a time, across stores (servers) on one database; release
// hands the lock on; another name is another lock.
func TestTryLock(t *testing.T) {
	ctx := context.Background()
	a, url, _ := openStore(t)
	b, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release, ok, err := a.TryLock(ctx, "reaper")
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "reaper"); err != nil || ok {
		t.Fatalf("second holder got the lock: %v, %v", ok, err)
	}
	other, ok, err := b.TryLock(ctx, "something else")
	if err != nil || !ok {
		t.Fatalf("another name: %v, %v", ok, err)
	}
	other()
	release()
	release2, ok, err := b.TryLock(ctx, "reaper")
	if err != nil || !ok {
		t.Fatalf("after release: %v, %v", ok, err)
	}
	release2()
}
