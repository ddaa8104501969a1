package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
)

// The JetStream stream of tracker users, its subjects and headers.
const (
	trackStream     = "SIDESTREAM_TRACK"
	trackSubject    = "sidestream.track."    // + user token: where publishes go
	trackRepublish  = "sidestream.trackpub." // + user token: stored messages, republished in order
	trackHdrSeq     = "Sidestream-Seq"       // the user seq
	trackHdrType    = "Sidestream-Type"      // the event type
	trackHdrStart   = "Sidestream-Start"     // "1": the user's sequence (re)starts here
	trackMaxTries   = 64                     // publishes that may lose a race for one Append
	trackOpTimeout  = 5 * time.Second        // one JetStream request: a lost leader answers none
	trackPosCache   = 4096                   // users whose last message an Append remembers
	trackStartValue = "1"
	trackElected    = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED." + trackStream
)

// TrackerOptions configure a TrackerLog.
type TrackerOptions struct {
	// Replicas of the JetStream stream (default 1; 3 in a 3-node cluster):
	// a publish is acknowledged once stored on a majority of them.
	Replicas int
	// MaxEvents kept per user (default 10000) and MaxAge (default 24h).
	MaxEvents int
	MaxAge    time.Duration
	// PositionCheck is how often every watched user with subscribers is
	// compared with JetStream's newest message (default 5s): live events
	// are republished at most once, and one lost (a route between servers
	// being re-established) would otherwise show only with the user's
	// next message, however late that comes.
	PositionCheck time.Duration
	Log           *slog.Logger
}

// TrackerLog keeps tracker users in one JetStream stream, SIDESTREAM_TRACK,
// one subject per user ("sidestream.track.<user>", file storage, the
// configured replicas, MaxMsgsPerSubject = MaxEvents, MaxAge). It is the
// tracker.Backend of a cluster: any node appends, every node serves.
//
// Seqs: a user's seq is one gap-free sequence for the cluster, carried in
// the Sidestream-Seq header. Append reads the user's last message (or
// remembers it from its own last publish), publishes seq+1 with
// Nats-Expected-Last-Subject-Sequence set to that message's stream
// sequence, and on a conflict (another node won) re-reads and retries,
// at most trackMaxTries times. The ack comes once the message is stored
// on a majority of the replicas. When all of a user's messages aged out,
// the sequence restarts at the stream's first sequence (its last + 1 if
// empty), which is above every seq the user had (a user seq never exceeds
// the stream sequence of its message), marked Sidestream-Start so readers
// skip the unused seqs silently.
//
// Live events: the stream republishes every stored message, in order, to
// "sidestream.trackpub.<user>"; each node subscribes there once per
// watched user and feeds an external stream (stream.Hub.OpenExternal).
// A hole (a republished message lost) is filled from JetStream when the
// next message shows it, or by the position check (every watched user
// with subscribers, every PositionCheck) when no next message comes;
// after a reconnect (watchers get `offline` meanwhile) or a leader
// election (a new leader does not republish what its predecessor stored)
// every watched user is synced from JetStream, and so is a user each time
// a client opens it.
//
// History reads (catch-up past the ring, pages, fills) map user seqs to
// stream sequences without an index: the last message of the subject
// (one get) gives the newest pair; the first message with a seq above
// `after` is found by binary search over stream sequences with
// next-by-subject gets (a user seq never exceeds its stream sequence, so
// the search runs over [after+1, last], about log2 of that many gets, and
// none when `after` is the newest but one). The messages themselves are
// then read with one next-by-subject get each: a page of n events costs
// about log2(range) + n + 1 requests, all answered by the stream leader
// (no direct gets: a lagging replica would make a fill see a hole that is
// not one; no consumers: creating one needs the meta leader). ReadBefore
// is ReadAfter from the seq limit below: seqs are contiguous within a
// user's sequence.
type TrackerLog struct {
	js  jetstream.JetStream
	st  jetstream.Stream
	nc  *nats.Conn
	hub *stream.Hub
	log *slog.Logger

	mu      sync.Mutex
	watches map[string]*trackWatch // by stream name
	pos     map[string]trackPos    // last message per subject, for Append
	turns   map[string]*trackTurn  // Appends of this node in progress, per subject
	closed  bool

	status chan nats.Status
	// elected is signalled when the stream elects a leader: a message
	// the old one stored but never republished may be missing.
	elected  chan struct{}
	advisory *nats.Subscription
	bg       context.Context // ends at Close: fills and resyncs
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

var _ tracker.Backend = (*TrackerLog)(nil)

// trackPos is a user's last message: its stream sequence, user seq and
// message id.
type trackPos struct {
	js, seq uint64
	id      string
}

// NewTrackerLog creates or updates the SIDESTREAM_TRACK stream and returns
// the backend. External streams it opens live on hub; nc is the
// connection js uses (its subscriptions carry the live events).
func NewTrackerLog(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, hub *stream.Hub, o TrackerOptions) (*TrackerLog, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.PositionCheck <= 0 {
		o.PositionCheck = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var st jetstream.Stream
	err := retryJS(ctx, "tracker stream", func(ctx context.Context) (err error) {
		st, err = js.CreateOrUpdateStream(ctx, trackStreamConfig(o))
		return err
	})
	if err == nil {
		err = waitLeader(ctx, st)
	}
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())

	l := &TrackerLog{
		js: js, st: st, nc: nc, hub: hub, log: o.Log,
		watches: map[string]*trackWatch{}, pos: map[string]trackPos{}, turns: map[string]*trackTurn{},
		bg: bg, cancel: cancel,
	}
	l.elected = make(chan struct{}, 1)
	l.advisory, err = nc.Subscribe(trackElected, func(*nats.Msg) {
		select {
		case l.elected <- struct{}{}:
		default: // a resync is already due
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("tracker stream %s: leader advisories: %w", trackStream, err)
	}
	l.status = nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	l.wg.Add(2)
	go l.watchStatus(bg)
	go l.checkPositions(bg, o.PositionCheck)
	return l, nil
}

func trackStreamConfig(o TrackerOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              trackStream,
		Description:       "sidestream tracker users",
		Subjects:          []string{trackSubject + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		MaxMsgsPerSubject: int64(o.MaxEvents),
		MaxAge:            o.MaxAge,
		Discard:           jetstream.DiscardOld,
		RePublish:         &jetstream.RePublish{Source: trackSubject + ">", Destination: trackRepublish + ">"},
	}
}

// ctx is the log's own context, ended by Close.
func (l *TrackerLog) ctx() context.Context { return l.bg }

// Close stops following the connection and every watched user; their
// streams stay on the hub until it drops them.
func (l *TrackerLog) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	watches := make([]*trackWatch, 0, len(l.watches))
	for _, w := range l.watches {
		watches = append(watches, w)
	}
	l.mu.Unlock()
	l.nc.RemoveStatusListener(l.status)
	_ = l.advisory.Unsubscribe()
	l.cancel()
	for _, w := range watches {
		w.unsubscribe()
	}
	return waitAll(ctx, &l.wg, "tracker log")
}

// trackTurn orders one node's Appends to one user: they would only
// race each other for the same seq. waiters counts who holds or wants it.
type trackTurn struct {
	ch      chan struct{} // holds one token: the turn
	waiters int
}

// turn waits for this node's turn to append to subj; done gives it back.
func (l *TrackerLog) turn(ctx context.Context, subj string) (done func(), err error) {
	l.mu.Lock()
	tt := l.turns[subj]
	if tt == nil {
		tt = &trackTurn{ch: make(chan struct{}, 1)}
		l.turns[subj] = tt
	}
	tt.waiters++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if tt.waiters--; tt.waiters == 0 {
			delete(l.turns, subj)
		}
		l.mu.Unlock()
	}
	select {
	case tt.ch <- struct{}{}:
		return func() { <-tt.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// Append publishes d as the next seq of t's user, acknowledged once
// stored under the stream's replication (tracker.Backend).
func (l *TrackerLog) Append(ctx context.Context, t tracker.Target, d event.Draft) (uint64, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	subj := trackSubject + token(t.User)
	done, err := l.turn(ctx, subj)
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", t.Name, trackUnavailable(err))
	}
	defer done()
	l.mu.Lock()
	closed := l.closed
	last, known := l.pos[subj]
	l.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("append to %s: %w", t.Name, stream.ErrClosed)
	}
	// One id for every try: a try whose ack was lost but that landed is
	// recognised (deduplicated by JetStream, or found as the last
	// message), never stored twice.
	id := nuid.Next()
	for try := range trackMaxTries {
		if try > 0 {
			// Other nodes won: let them finish before reading the last.
			if err := trackBackoff(ctx, try); err != nil {
				return 0, fmt.Errorf("append to %s: %w", t.Name, trackUnavailable(err))
			}
		}
		if !known {
			var err error
			if last, err = l.nextPos(ctx, subj); err != nil {
				return 0, fmt.Errorf("append to %s: %w", t.Name, err)
			}
			if last.id == id {
				return last.seq, nil
			}
		}
		seq, err := l.publish(ctx, subj, last, d, id)
		if err == nil {
			return seq, nil
		}
		if !trackConflict(err) {
			return 0, fmt.Errorf("append to %s: %w", t.Name, trackUnavailable(err))
		}
		known = false // another node appended first: read its message
	}
	return 0, fmt.Errorf("append to %s: lost the race %d times: %w", t.Name, trackMaxTries, stream.ErrStoreUnavailable)
}

// publish appends the message after last: seq last.seq+1, expecting the
// subject's last message to be last.js, and returns the seq stored. A
// timed-out try is repeated as is.
func (l *TrackerLog) publish(ctx context.Context, subj string, last trackPos, d event.Draft, id string) (uint64, error) {
	m := nats.NewMsg(subj)
	m.Header.Set(trackHdrSeq, strconv.FormatUint(last.seq+1, 10))
	m.Header.Set(trackHdrType, d.Type)
	if last.js == 0 {
		m.Header.Set(trackHdrStart, trackStartValue)
	}
	m.Data = d.Data
	var err error
	for range 3 {
		pctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
		var ack *jetstream.PubAck
		ack, err = l.js.PublishMsg(pctx, m, jetstream.WithExpectLastSequencePerSubject(last.js), jetstream.WithMsgID(id))
		cancel()
		switch {
		case err == nil && ack.Duplicate:
			// An earlier try landed, maybe with another seq: read it.
			got, err := l.nextMsg(ctx, subj, ack.Sequence)
			if err != nil {
				return 0, err
			}
			l.remember(subj, trackPos{js: got.js, seq: got.ev.Seq, id: id})
			return got.ev.Seq, nil
		case err == nil:
			l.remember(subj, trackPos{js: ack.Sequence, seq: last.seq + 1, id: id})
			return last.seq + 1, nil
		}
		lost := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
		if !lost || ctx.Err() != nil {
			return 0, err
		}
	}
	return 0, err
}

// nextPos returns what the next Append must expect: the subject's last
// message or, for an empty subject, js 0 and the seq below the restart.
func (l *TrackerLog) nextPos(ctx context.Context, subj string) (trackPos, error) {
	last, found, err := l.lastMsg(ctx, subj)
	if err != nil {
		return trackPos{}, err
	}
	if found {
		return trackPos{js: last.js, seq: last.ev.Seq, id: last.id}, nil
	}
	floor, err := l.floor(ctx)
	return trackPos{seq: floor - 1}, err
}

// floor is where an empty subject's sequence (re)starts: above every seq
// its user had, since those messages all left the stream from its front.
func (l *TrackerLog) floor(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
	defer cancel()
	info, err := l.st.Info(ctx)
	if err != nil {
		return 0, trackUnavailable(err)
	}
	if info.State.Msgs == 0 {
		return info.State.LastSeq + 1, nil
	}
	return info.State.FirstSeq, nil
}

func (l *TrackerLog) remember(subj string, p trackPos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pos) >= trackPosCache {
		clear(l.pos) // a miss costs one get: no need for LRU bookkeeping
	}
	l.pos[subj] = p
}

// trackBackoff sleeps a random time that grows with try (up to 20 ms),
// so nodes racing for one user's next seq stop colliding.
func trackBackoff(ctx context.Context, try int) error {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(min(try, 20)) * int64(time.Millisecond))))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trackConflict reports a publish refused because the subject's last
// message is not the one expected: another node appended first.
func trackConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// trackUnavailable marks a JetStream failure retryable for callers (HTTP
// 503), keeping the cause.
func trackUnavailable(err error) error {
	if err == nil || errors.Is(err, stream.ErrStoreUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", stream.ErrStoreUnavailable, err)
}
