package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard is the hang guard of every blocking step: generous, never a
// performance assertion.
const guard = 20 * time.Second

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newHub returns a hub over store that is closed when the test ends.
func newHub(t testing.TB, store stream.Store) *stream.Hub {
	t.Helper()
	h := stream.NewHub(store, discard(), stream.HubOptions{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return h
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

func open(t testing.TB, h *stream.Hub, name string, cfg stream.Config) *stream.Stream {
	t.Helper()
	s, err := h.Open(ctxT(t), name, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return s
}

// drafts returns n drafts whose data is {"n":from+i}.
func drafts(from, n int) []event.Draft {
	out := make([]event.Draft, n)
	for i := range out {
		out[i] = event.Draft{Type: "tick", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, from+i))}
	}
	return out
}

func publish(t testing.TB, s *stream.Stream, from, n int) uint64 {
	t.Helper()
	last, err := s.Publish(ctxT(t), drafts(from, n), nil)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return last
}

// readN reads from sub until it holds n events (gap markers included).
func readN(t testing.TB, sub *stream.Subscription, n int) []*event.Event {
	t.Helper()
	ctx := ctxT(t)
	var got []*event.Event
	for i := 0; len(got) < n && i < n+10; i++ {
		var err error
		got, err = sub.Next(ctx, got)
		if err != nil {
			t.Fatalf("next after %d events: %v", len(got), err)
		}
	}
	if len(got) != n {
		t.Fatalf("read %d events, want %d", len(got), n)
	}
	return got
}

// seqs returns the seqs of evs; gap markers appear as "gap[from,to]".
func seqs(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		if e == nil {
			out[i] = "nil"
			continue
		}
		if e.IsGap() {
			out[i] = "gap" + string(e.Data)
			continue
		}
		out[i] = fmt.Sprint(e.Seq)
	}
	return out
}

// wantRange checks evs are exactly the events seqs from..to, in order,
// with the data drafts() gave them (data n == seq + shift).
func wantRange(t testing.TB, evs []*event.Event, from, to uint64, shift int) {
	t.Helper()
	if uint64(len(evs)) != to-from+1 {
		t.Fatalf("got %d events %v, want seqs %d..%d", len(evs), seqs(evs), from, to)
	}
	for i, e := range evs {
		want := from + uint64(i)
		if e == nil || e.Seq != want || e.IsGap() {
			t.Fatalf("event %d: %v, want seq %d (all: %v)", i, seqs(evs[i:i+1]), want, seqs(evs))
		}
		if wantData := fmt.Sprintf(`{"n":%d}`, int(want)+shift); string(e.Data) != wantData {
			t.Fatalf("seq %d data %s, want %s", e.Seq, e.Data, wantData)
		}
	}
}

// wantGap checks e is the gap marker for from..to.
func wantGap(t testing.TB, e *event.Event, from, to uint64) {
	t.Helper()
	if e == nil || !e.IsGap() || e.Type != event.TypeGap {
		t.Fatalf("got %v, want a gap marker", seqs([]*event.Event{e}))
	}
	var d struct{ From, To uint64 }
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("gap data %s: %v", e.Data, err)
	}
	if d.From != from || d.To != to || e.Seq != to {
		t.Fatalf("gap %s seq %d, want from %d to %d (seq %d)", e.Data, e.Seq, from, to, to)
	}
}
