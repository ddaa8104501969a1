package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, o queue.Options) (*queue.Service, *clock) {
	t.Helper()
	st, err := bolt.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), bolt.Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Queues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: queuetest.T0}
	o.Now = clk.Now
	s := queue.NewService(d, o, nil)
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, clk
}

var k = queue.Key{Tenant: "t", Queue: "q"}

func msgs(n int, body string, ttl time.Duration) []queue.NewMessage {
	out := make([]queue.NewMessage, n)
	for i := range out {
		out[i] = queue.NewMessage{Body: json.RawMessage(body), TTL: ttl}
	}
	return out
}

func TestServiceRejectsBadInput(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, queue.Options{})
	ctx := context.Background()
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"name too long", func() error { _, err := s.CreateQueue(ctx, queue.Key{Tenant: "t", Queue: long}, nil); return err }, queue.ErrInvalid},
		{"name with dot", func() error { _, err := s.CreateQueue(ctx, queue.Key{Tenant: "t", Queue: "a.b"}, nil); return err }, queue.ErrInvalid},
		{"empty name", func() error {
			_, err := s.Post(ctx, queue.Key{Tenant: "t"}, queuetest.ClientA, msgs(1, "1", 0))
			return err
		}, queue.ErrInvalid},
		{"empty tenant", func() error {
			_, err := s.Post(ctx, queue.Key{Queue: "q"}, queuetest.ClientA, msgs(1, "1", 0))
			return err
		}, queue.ErrInvalid},
		{"metadata not object", func() error { _, err := s.CreateQueue(ctx, k, json.RawMessage(`[1]`)); return err }, queue.ErrInvalid},
		{"metadata ttl out of range", func() error {
			_, err := s.CreateQueue(ctx, k, json.RawMessage(`{"_default_message_ttl":5}`))
			return err
		}, queue.ErrInvalid},
		{"missing client id", func() error { _, err := s.Post(ctx, k, "", msgs(1, "1", 0)); return err }, queue.ErrInvalid},
		{"bad client id", func() error { _, err := s.Post(ctx, k, "me", msgs(1, "1", 0)); return err }, queue.ErrInvalid},
		{"ttl too short", func() error { _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, "1", time.Second)); return err }, queue.ErrInvalid},
		{"ttl too long", func() error { _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, "1", 15*24*time.Hour)); return err }, queue.ErrInvalid},
		{"empty batch", func() error { _, err := s.Post(ctx, k, queuetest.ClientA, nil); return err }, queue.ErrInvalid},
		{"batch too long", func() error { _, err := s.Post(ctx, k, queuetest.ClientA, msgs(101, "1", 0)); return err }, queue.ErrInvalid},
		{"missing body", func() error { _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, "", 0)); return err }, queue.ErrInvalid},
		{"message too large", func() error {
			_, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, `"`+strings.Repeat("x", 256<<10)+`"`, 0))
			return err
		}, queue.ErrTooLarge},
		{"batch too large", func() error {
			_, err := s.Post(ctx, k, queuetest.ClientA, msgs(2, `"`+strings.Repeat("x", 130<<10)+`"`, 0))
			return err
		}, queue.ErrTooLarge},
		{"claim ttl too short", func() error {
			_, err := s.Claim(ctx, k, queuetest.ClientA, queue.ClaimOptions{TTL: time.Second})
			return err
		}, queue.ErrInvalid},
		{"claim grace too long", func() error {
			_, err := s.Claim(ctx, k, queuetest.ClientA, queue.ClaimOptions{Grace: 13 * time.Hour})
			return err
		}, queue.ErrInvalid},
		{"claim limit too high", func() error {
			_, err := s.Claim(ctx, k, queuetest.ClientA, queue.ClaimOptions{Limit: 101})
			return err
		}, queue.ErrInvalid},
		{"list limit too high", func() error {
			_, err := s.List(ctx, k, queue.ListOptions{ClientID: queuetest.ClientA, Limit: 101})
			return err
		}, queue.ErrInvalid},
		{"queues limit too high", func() error { _, err := s.ListQueues(ctx, "t", "", 21); return err }, queue.ErrInvalid},
		{"renew ttl too long", func() error {
			return s.RenewClaim(ctx, k, queuetest.ClientA, "x", 13*time.Hour, 0)
		}, queue.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var ve *queue.ValidationError
			if errors.Is(tc.want, queue.ErrInvalid) && (!errors.As(err, &ve) || ve.Field == "") {
				t.Fatalf("error %v names no field", err)
			}
		})
	}
	// Nothing above stored anything.
	if qs, err := s.ListQueues(ctx, "t", "", 20); err != nil || len(qs) != 0 {
		t.Fatalf("queues after rejected requests: %v %v", qs, err)
	}
}

func TestServiceMetadataDefaults(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, queue.Options{})
	ctx := context.Background()
	if _, err := s.CreateQueue(ctx, k, json.RawMessage(`{"_default_message_ttl":120,"_max_messages_post_size":10}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, `"more than ten bytes"`, 0)); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("post over the queue's size: %v", err)
	}
	if _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, `"short"`, 0)); err != nil {
		t.Fatal(err)
	}
	p, err := s.List(ctx, k, queue.ListOptions{ClientID: queuetest.ClientA, Echo: true})
	if err != nil || len(p.Messages) != 1 || p.Messages[0].TTL != 120*time.Second {
		t.Fatalf("message ttl from metadata: %+v %v", p.Messages, err)
	}
	// A metadata change applies to the next post.
	if err := s.SetMetadata(ctx, k, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, `"more than ten bytes"`, 0)); err != nil {
		t.Fatalf("post after metadata reset: %v", err)
	}
}

func TestServiceWatchWakesOnPost(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, queue.Options{})
	w := s.Watch(k)
	other := s.Watch(queue.Key{Tenant: "t2", Queue: "q"})
	if _, err := s.Post(context.Background(), k, queuetest.ClientA, msgs(1, "1", 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("watch not woken by a post")
	}
	select {
	case <-other:
		t.Fatal("another tenant's watch woke")
	default:
	}
}

func TestServiceSweepsExpired(t *testing.T) {
	t.Parallel()
	s, clk := newService(t, queue.Options{SweepInterval: 5 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.Post(ctx, k, queuetest.ClientA, msgs(3, "1", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Post(ctx, k, queuetest.ClientA, msgs(1, "2", time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	// Reads hide expired messages at once; the sweeper removes them.
	st, err := s.Stats(ctx, k)
	if err != nil || st.Total != 1 {
		t.Fatalf("stats after ttl: %+v %v", st, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := s.List(ctx, k, queue.ListOptions{ClientID: queuetest.ClientA, Echo: true, IncludeClaimed: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Messages) != 1 {
			t.Fatalf("listed %d", len(p.Messages))
		}
		// Rewinding the clock would show unswept messages again: once the
		// sweeper ran they are gone for good.
		clk.Add(-time.Minute)
		p, _ = s.List(ctx, k, queue.ListOptions{ClientID: queuetest.ClientA, Echo: true, IncludeClaimed: true})
		clk.Add(time.Minute)
		if len(p.Messages) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sweeper never removed the expired messages")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
