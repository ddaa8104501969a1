package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// publishAsync enqueues one event on st and reports the caller's outcome
// with the head it saw once answered.
func publishAsync(t *testing.T, st *stream.Stream, n int) <-chan [2]any {
	t.Helper()
	res := make(chan [2]any, 1)
	_, wait, err := st.Enqueue([]event.Draft{{Type: "t", Data: []byte(fmt.Sprintf(`{"n":%d}`, n))}}, nil)
	if err != nil {
		t.Fatalf("enqueue %d: %v", n, err)
	}
	go func() {
		err := wait(context.Background())
		res <- [2]any{err, st.Head()}
	}()
	return res
}

// Two commits of one stream are in the journal with their syncs in
// flight at once; they are answered in order, and when the first one's
// sync fails the second fails too, though its own sync succeeded: the
// history keeps neither, so it has no hole.
func TestStreamCommitsInFlightTogether(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			t.Parallel()
			h := newHeldSyncs(2, 3)
			path := tempPath(t)
			s := openT(t, path, Options{syncSeam: h.seam()})
			hub := stream.NewHub(s, slog.New(slog.DiscardHandler), stream.HubOptions{})
			t.Cleanup(func() { _ = hub.Close(context.Background()) })
			t.Cleanup(func() { // first, if the test failed with syncs held
				for _, release := range h.held {
					select {
					case release <- nil:
					default:
					}
				}
			})
			st, err := hub.Open(testCtx(t), "s", stream.Config{Persist: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Publish(testCtx(t), []event.Draft{{Type: "t", Data: []byte(`{"n":1}`)}}, nil); err != nil {
				t.Fatal(err) // group 1
			}
			first := publishAsync(t, st, 2)
			await(t, "the sync", h.entered, 2)
			second := publishAsync(t, st, 3)
			await(t, "the sync of the second commit in flight", h.entered, 3)

			var syncErr error
			if fail {
				syncErr = syscall.EIO
			}
			h.held[3] <- nil // the later sync succeeds first
			await(t, "the handling", h.handled, 3)
			h.held[2] <- syncErr
			for i, ch := range []<-chan [2]any{first, second} {
				got := <-ch
				err, head := got[0], got[1].(uint64)
				switch {
				case fail && (err == nil || !errors.Is(err.(error), syscall.EIO) || head != 1):
					t.Fatalf("commit %d: %v, head %d; want the first sync's EIO and head 1", i+1, err, head)
				case !fail && (err != nil || head < uint64(i+2)):
					t.Fatalf("commit %d: %v, head %d; want success once seq %d is visible", i+1, err, head, i+2)
				}
			}
			if err := hub.Close(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			closeT(t, s)

			s = openT(t, path, Options{})
			want := "[1 2 3]"
			if fail {
				want = "[1]"
			}
			if got := eventsOf(t, s, "s"); got != want {
				t.Fatalf("after reopen: %s, want %s", got, want)
			}
		})
	}
}
