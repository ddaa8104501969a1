package queueapi

import (
	"testing"

	"github.com/sidestream/sidestream/core/queue/memq"
)

// The window's bookkeeping is the same for the drivers' ids (kept by
// seq) and any other id (kept by string): a delete frees what a delivery
// took, and expire forgets exactly the expired claims.
func TestInflightWindow(t *testing.T) {
	t.Parallel()
	var f inflight
	ids := []string{memq.MessageID(7), memq.MessageID(8), memq.MessageID(1 << 40), "not-a-seq", memq.MessageID(0)}
	for i, id := range ids {
		f.set(id, int64(100*(i+1)))
	}
	if f.len() != len(ids) {
		t.Fatalf("len %d, want %d", f.len(), len(ids))
	}
	f.delete(memq.MessageID(8))
	f.delete("unknown")
	if f.len() != len(ids)-1 {
		t.Fatalf("after a delete: len %d, want %d", f.len(), len(ids)-1)
	}
	// Expiries left: 100 (7), 300 (1<<40), 400 (not-a-seq), 500 (seq 0).
	if soonest := f.expire(300); soonest != 400 || f.len() != 2 {
		t.Fatalf("expire(300): soonest %d, len %d; want 400, 2", soonest, f.len())
	}
	f.delete("not-a-seq")
	f.delete(memq.MessageID(0))
	if soonest := f.expire(300); soonest != 0 || f.len() != 0 {
		t.Fatalf("emptied: soonest %d, len %d", soonest, f.len())
	}
}
