package natsbus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
)

const (
	// trackSettle is when a new watch checks JetStream once more: its
	// subscription's interest may reach the stream leader's server after a
	// message that this node would then only see with the next one.
	trackSettle = 250 * time.Millisecond
	// trackOffline is the reason watchers get while the connection is lost.
	trackOffline = "cluster connection lost"
)

// trackWatch is one user watched by this node: a subscription to the
// user's republished messages feeding an external stream. It is the
// stream's stream.ExternalSource.
type trackWatch struct {
	l    *TrackerLog
	subj string // the user's subject in the stream
	name string

	ready chan struct{} // closed once st (or err) is set
	st    *stream.Stream
	err   error

	mu     sync.Mutex // orders deliveries with fills; guards sub, settle
	sub    *nats.Subscription
	settle *time.Timer
}

// Open returns the external stream of t's user on this node, watching
// the user if it is not yet, and current with JetStream as of the call:
// a resume point a client got from another node is never ahead of it
// (tracker.Backend).
func (l *TrackerLog) Open(ctx context.Context, t tracker.Target) (*stream.Stream, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	for range 3 { // a watch the hub dropped meanwhile is made again
		w, created, err := l.watch(t)
		if err != nil {
			return nil, err
		}
		if created {
			w.start(ctx, t)
		}
		select {
		case <-w.ready:
		case <-ctx.Done(): // another caller's start is slow: JetStream is
			return nil, fmt.Errorf("open %s: %w", t.Name, trackUnavailable(ctx.Err()))
		}
		if w.st == nil {
			return nil, w.err
		}
		// While the connection is lost, the stream serves what it has and
		// its subscribers get the offline marker.
		if !created && !w.st.Offline() {
			if err := w.sync(ctx); err != nil {
				return nil, fmt.Errorf("open %s: %w", t.Name, err)
			}
		}
		// Get also marks the stream used, so the hub keeps it a while.
		if s, ok := l.hub.Get(t.Name); ok && s == w.st {
			return s, nil
		}
	}
	return nil, fmt.Errorf("open %s: dropped while opening: %w", t.Name, stream.ErrStoreUnavailable)
}

// watch returns the watch of t, created (not started) if there was none.
func (l *TrackerLog) watch(t tracker.Target) (w *trackWatch, created bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false, fmt.Errorf("open %s: %w", t.Name, stream.ErrClosed)
	}
	if w := l.watches[t.Name]; w != nil {
		return w, false, nil
	}
	w = &trackWatch{l: l, subj: trackSubject + token(t.User), name: t.Name, ready: make(chan struct{})}
	l.watches[t.Name] = w
	return w, true, nil
}

// start subscribes, then opens the external stream at JetStream's head:
// messages stored in between are both in the head and delivered, and
// Deliver drops the second copy.
func (w *trackWatch) start(ctx context.Context, t tracker.Target) {
	defer close(w.ready)
	sub, err := w.l.nc.Subscribe(trackRepublish+token(t.User), w.onMsg)
	if err == nil {
		err = w.l.nc.FlushWithContext(ctx)
	}
	w.mu.Lock()
	w.sub = sub
	w.mu.Unlock()
	if err != nil {
		w.err = fmt.Errorf("watch %s: %w", t.Name, trackUnavailable(err))
		w.Release()
		return
	}
	// OpenExternal releases w itself when it fails.
	st, err := w.l.hub.OpenExternal(ctx, t.Name, t.Config, w)
	if err != nil {
		w.err = fmt.Errorf("watch %s: %w", t.Name, err)
		return
	}
	w.st = st
	w.mu.Lock()
	if w.sub != nil { // not released meanwhile
		w.settle = time.AfterFunc(trackSettle, func() {
			ctx, cancel := context.WithTimeout(w.l.ctx(), trackOpTimeout)
			defer cancel()
			_ = w.sync(ctx)
		})
	}
	w.mu.Unlock()
}

// onMsg delivers one republished message (the subscription's goroutine).
func (w *trackWatch) onMsg(m *nats.Msg) {
	<-w.ready
	if w.st == nil {
		return
	}
	js, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	at, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	tm, err := trackDecode(w.name, m.Header, m.Data, js, at)
	if err != nil {
		w.l.log.Warn("tracker: unreadable message", "stream", w.name, "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.deliverLocked(tm); err != nil {
		// The next message or resync finds the hole again.
		w.l.log.Warn("tracker: fill from JetStream", "stream", w.name, "err", err)
	}
}

// sync delivers what JetStream holds beyond the stream's head.
func (w *trackWatch) sync(ctx context.Context) error {
	last, found, err := w.l.lastMsg(ctx, w.subj)
	if err != nil || !found {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deliverLocked(last)
}

// deliverLocked delivers m, first filling from JetStream any hole before
// it (w.mu held).
func (w *trackWatch) deliverLocked(m trackMsg) error {
	evs := []*event.Event{m.ev}
	for range 64 { // each round fills up to stream.MaxBatch seqs
		from, to, ok := w.st.Deliver(evs)
		if ok {
			return nil
		}
		if err := w.fill(from, to, m); err != nil {
			return err
		}
	}
	return nil
}

// fill delivers the seqs from..to from JetStream; next is the message
// after them. Seqs JetStream does not hold are skipped silently when a
// restarted sequence never used them, else shown as a gap.
func (w *trackWatch) fill(from, to uint64, next trackMsg) error {
	ctx, cancel := context.WithTimeout(w.l.ctx(), trackOpTimeout)
	defer cancel()
	msgs, err := w.l.readAfter(ctx, w.subj, from-1, int(min(to-from+1, stream.MaxBatch)))
	if err != nil {
		return err
	}
	if len(msgs) == 0 || msgs[0].ev.Seq > from {
		end, start := to, next.start
		if len(msgs) > 0 {
			end, start = msgs[0].ev.Seq-1, msgs[0].start
		}
		if start {
			w.st.Skip(end)
		} else {
			w.st.DeliverGap(from, end)
		}
	}
	w.st.Deliver(trackEvents(msgs)) // a further hole comes back to deliverLocked
	return nil
}

// Head is JetStream's newest seq of the user (stream.ExternalSource).
func (w *trackWatch) Head(ctx context.Context, _ string) (uint64, error) {
	return w.l.head(ctx, w.subj)
}

// ReadAfter reads the user's history from JetStream (stream.ExternalSource).
func (w *trackWatch) ReadAfter(ctx context.Context, _ string, after uint64, limit int) ([]*event.Event, error) {
	msgs, err := w.l.readAfter(ctx, w.subj, after, limit)
	return trackEvents(msgs), err
}

// ReadBefore reads the newest up to limit events below before from
// JetStream (stream.ExternalSource): the seqs are contiguous within a
// user's sequence, so it reads after the seq limit below.
func (w *trackWatch) ReadBefore(ctx context.Context, _ string, before uint64, limit int) ([]*event.Event, error) {
	last, found, err := w.l.lastMsg(ctx, w.subj)
	if err != nil || !found || limit <= 0 {
		return nil, err
	}
	top := last.ev.Seq
	if before != 0 && before-1 < top {
		top = before - 1
	}
	msgs, err := w.l.readAfter(ctx, w.subj, top-min(top, uint64(limit)), limit)
	for i, m := range msgs {
		if m.ev.Seq > top {
			msgs = msgs[:i]
			break
		}
	}
	return trackEvents(msgs), err
}

// Release stops watching once the hub dropped the stream
// (stream.ExternalSource).
func (w *trackWatch) Release() {
	w.unsubscribe()
	w.l.mu.Lock()
	if w.l.watches[w.name] == w {
		delete(w.l.watches, w.name)
	}
	w.l.mu.Unlock()
}

func (w *trackWatch) unsubscribe() {
	w.mu.Lock()
	sub, settle := w.sub, w.settle
	w.sub, w.settle = nil, nil
	w.mu.Unlock()
	if settle != nil {
		settle.Stop()
	}
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// watchStatus marks every watched stream offline while the connection
// is lost and, once it is back or the stream elected a leader (which may
// not have republished every message), delivers what was missed before
// marking each online again; resyncs that fail are retried with backoff.
//
// After a reconnect every subscription is new on the server reached, and
// its interest may reach the stream leader's server after the resync's
// read (nothing orders the two across the cluster): a message stored in
// between is neither read nor delivered, and would only show as a hole
// with the user's next message. So, as for a new watch, a reconnect's
// resync is repeated once, trackSettle after it succeeded.
func (l *TrackerLog) watchStatus(ctx context.Context) {
	defer l.wg.Done()
	var retry, settle <-chan time.Time
	delay := 100 * time.Millisecond
	settleDue := false // the next successful resync follows a reconnect
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-l.status:
			if !ok {
				return
			}
			if s == nats.CONNECTED {
				retry, delay, settleDue = time.After(0), 100*time.Millisecond, true
			} else {
				retry, settle, settleDue = nil, nil, false
				l.setOffline()
			}
		case <-l.elected:
			retry, delay = time.After(0), 100*time.Millisecond
		case <-retry:
			retry = nil
			switch {
			case !l.resync(ctx):
				retry, delay = time.After(delay), min(2*delay, 5*time.Second)
			case settleDue:
				// Its own timer: an election's resync right after a
				// reconnect (both come with a node's loss) is no settle.
				settle, settleDue = time.After(trackSettle), false
			}
		case <-settle:
			settle = nil
			if !l.resync(ctx) {
				retry, delay = time.After(delay), min(2*delay, 5*time.Second)
			}
		}
	}
}

// checkPositions syncs every watched user with subscribers every
// interval until ctx ends (TrackerOptions.PositionCheck).
func (l *TrackerLog) checkPositions(ctx context.Context, every time.Duration) {
	defer l.wg.Done()
	everyTick(ctx, every, l.checkPositionsOnce)
}

// checkPositionsOnce syncs every watched user with subscribers. A user
// that is offline is the reconnect's to resync; a check that fails is
// the next tick's to repeat.
func (l *TrackerLog) checkPositionsOnce(ctx context.Context) {
	for _, w := range l.watched() {
		if ctx.Err() != nil {
			return
		}
		if !w.opened() || w.st.Offline() || w.st.Subscribers() == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
		_ = w.sync(cctx)
		cancel()
	}
}

func (l *TrackerLog) watched() []*trackWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*trackWatch, 0, len(l.watches))
	for _, w := range l.watches {
		out = append(out, w)
	}
	return out
}

func (l *TrackerLog) setOffline() {
	for _, w := range l.watched() {
		if w.opened() {
			w.st.SetOffline(true, trackOffline)
		}
	}
}

// resync brings every watched stream up to date and back online; it
// reports whether all made it.
func (l *TrackerLog) resync(ctx context.Context) bool {
	all := true
	for _, w := range l.watched() {
		if !w.opened() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
		err := w.sync(sctx)
		cancel()
		if err != nil {
			all = false
			continue
		}
		w.st.SetOffline(false, "")
	}
	return all
}

// opened reports whether the watch has its stream (never blocks).
func (w *trackWatch) opened() bool {
	select {
	case <-w.ready:
		return w.st != nil
	default:
		return false
	}
}
