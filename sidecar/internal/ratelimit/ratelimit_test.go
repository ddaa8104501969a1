package ratelimit

import (
	"testing"
	"time"
)

// A client gets its burst at once, then one write per 1/rate; another
// client has its own bucket; Retry-After is whole seconds.
func TestAllow(t *testing.T) {
	t.Parallel()
	l := New(0.5, 2) // one write per 2 s
	now := time.Unix(1_000_000, 0)
	for i := range 2 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("write %d within the burst refused", i)
		}
	}
	if ok, retry := l.Allow("a", now); ok || retry != 2 {
		t.Fatalf("write beyond the burst: ok %v retry %d, want refused, retry 2", ok, retry)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another client's write refused")
	}
	if ok, _ := l.Allow("a", now.Add(2*time.Second)); !ok {
		t.Fatal("write after the refill refused")
	}
	var off *Limiter
	if ok, _ := off.Allow("a", now); !ok || New(0, 5) != nil {
		t.Fatal("no rate must allow everything")
	}
}

// A sweep drops the buckets that are full again and keeps the one in use.
func TestSweepKeepsOnlyBusyClients(t *testing.T) {
	t.Parallel()
	l := New(1, 1)
	now := time.Unix(1_000_000, 0)
	l.Allow("idle", now)
	l.Allow("busy", now.Add(sweepEvery))
	l.Allow("busy2", now.Add(2*sweepEvery))
	l.mu.Lock()
	_, idle := l.clients["idle"]
	_, busy := l.clients["busy2"]
	l.mu.Unlock()
	if idle || !busy {
		t.Fatalf("after sweeps: idle kept %v, busy kept %v", idle, busy)
	}
}

func TestClient(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ token, addr, want string }{
		{"tok", "127.0.0.1:5000", "token tok"},
		{"", "127.0.0.1:5000", "addr 127.0.0.1"},
		{"", "[::1]:5000", "addr ::1"},
		{"", "pipe", "addr pipe"},
	} {
		if got := Client(tt.token, tt.addr); got != tt.want {
			t.Errorf("Client(%q, %q) = %q, want %q", tt.token, tt.addr, got, tt.want)
		}
	}
}
