package streamhttp

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// Fan is a few writer goroutines (shards) that deliver the events of many
// SSE subscribers. With one goroutine per subscriber, a wake-up of a hot
// stream made ~1000 goroutines runnable at once: they overflowed the
// processors' run queues into Go's global one, and the goroutines that
// the network poller woke for the next publish queued behind them (tens
// of ms each hop). A wake-up now queues the subscribers on their shards
// and makes at most one goroutine per shard runnable.
//
// Each subscriber keeps its own goroutine, parked while a shard serves it:
// it writes what a shard cannot write without waiting (a slow reader's
// rest, under the usual write deadline), heartbeats, and the end of the
// stream. So one stuck subscriber never stalls its shard.
type Fan struct {
	shards []*shard
	once   sync.Once
	wg     sync.WaitGroup

	next atomic.Uint32 // round robin over shards
}

// NewFan returns a Fan of n shards (at least 1); their goroutines start
// with the first subscriber.
func NewFan(n int) *Fan {
	f := &Fan{shards: make([]*shard, max(n, 1))}
	for i := range f.shards {
		f.shards[i] = &shard{signal: make(chan struct{}, 1)}
	}
	return f
}

// Close stops the shards once they served what they hold; subscribers
// woken later are served by their own goroutines.
func (f *Fan) Close(ctx context.Context) error {
	f.once.Do(func() {}) // no start after Close
	for _, sh := range f.shards {
		sh.close()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("fan: writers still busy"), ctx.Err())
	}
}

// pick starts the shards if needed and returns the next one, round robin.
func (f *Fan) pick() *shard {
	f.once.Do(func() {
		for _, sh := range f.shards {
			f.wg.Add(1)
			go func() { defer f.wg.Done(); sh.run() }()
		}
	})
	return f.shards[int(f.next.Add(1)-1)%len(f.shards)]
}

// TryWriter is an SSE response that can write without waiting for its
// client, which a shard needs: it must not wait for one slow reader.
type TryWriter interface {
	FlushWriter
	// TryWriteFrames writes frames as one chunk (as FramesWriter), but
	// only what the socket takes now; done is false when some is left,
	// which FinishWrite then writes, waiting up to the write deadline.
	TryWriteFrames(frames [][]byte) (n int, done bool, err error)
	FinishWrite() error
}

// Who holds a FanSSE's subscription and writer: exactly one goroutine
// uses them at a time.
const (
	heldByOwn   = iota // the subscriber's own goroutine
	heldByNone         // parked: registered with the stream (Poll)
	heldByShard        // queued on or served by its shard
)

// FanSSE is one subscriber served through a Fan. The zero value is ready;
// it is used by one Serve call.
type FanSSE struct {
	s     *SSEStream
	tw    TryWriter
	shard *shard
	wake  func()
	back  chan struct{} // the shard handing the subscriber back (cap 1)

	mu     sync.Mutex
	holder int
	kicked bool // a wake-up came while it was held: poll again
	want   bool // its own goroutine waits to take it back

	// Set by the shard before it hands the subscriber back.
	err        error // its write failed
	unfinished bool  // the socket did not take a whole write
	// lastWrite is when the shard last wrote (unix ns), for heartbeats:
	// an atomic, so a shard's write takes no lock for it.
	lastWrite atomic.Int64
	// slowUntil: its own goroutine serves it until then (slowStay).
	slowUntil time.Time
}

// Serve is s.Run with the deliveries made by fan's shards: it writes
// events and heartbeats after a successful s.Start, with Run's ends and
// errors. A filter or a rate cap keeps the subscriber on its own
// goroutine (s.Run).
func (f *FanSSE) Serve(ctx context.Context, fan *Fan, s *SSEStream, tw TryWriter) error {
	if s.Opts.Filter != nil || s.thin != nil {
		return s.Run(ctx)
	}
	f.s, f.tw, f.shard = s, tw, fan.pick()
	f.back = make(chan struct{}, 1)
	f.wake = f.kick
	err := f.loop(ctx)
	s.beat.Stop()
	if errors.Is(err, errEnded) {
		return nil
	}
	return err
}

// loop delivers on the subscriber's own goroutine until the subscriber
// waits, then parks until it holds the subscriber again.
func (f *FanSSE) loop(ctx context.Context) error {
	s := f.s
	for {
		if !f.slowUntil.IsZero() {
			// A slow reader: served as without shards, each write
			// waiting for its socket, until it kept up for slowStay.
			if err := f.slowTurn(ctx); err != nil {
				return err
			}
			continue
		}
		evs, r := s.Sub.Poll(s.evs[:0], f.wake)
		s.evs = evs
		var err error
		switch r {
		case stream.PollEvents:
			err = s.deliver(ctx, nil)
		case stream.PollBlocking:
			s.evs, err = s.Sub.NextUntil(ctx, s.evs[:0], s.beat.C)
			err = s.deliver(ctx, err)
		case stream.PollWait:
			if f.release(false) {
				err = f.park(ctx)
			}
		}
		if err != nil {
			return err
		}
	}
}

// slowStay is how long a subscriber whose socket did not take a write
// stays on its own goroutine after its last wait for the socket. Left to
// the shards, it would get a part of each write (what fits) and hand the
// rest back, every few ms, while its client catches up.
const slowStay = time.Second

// slowTurn is one turn of a slow reader on its own goroutine.
func (f *FanSSE) slowTurn(ctx context.Context) error {
	s := f.s
	evs, err := s.Sub.NextUntil(ctx, s.evs[:0], s.beat.C)
	s.evs = evs
	start := time.Now()
	if err = s.deliver(ctx, err); err != nil {
		return err
	}
	if now := time.Now(); now.Sub(start) > time.Millisecond {
		f.slowUntil = now.Add(slowStay) // waited for the socket again
	} else if now.After(f.slowUntil) {
		f.slowUntil = time.Time{}
	}
	return nil
}

// park waits while the stream or the shard holds the subscriber, and
// returns once its own goroutine holds it again (or with the end).
func (f *FanSSE) park(ctx context.Context) error {
	for {
		select {
		case <-f.back:
			return f.takeBack()
		case <-ctx.Done():
			f.take()
			if err := f.takeBack(); err != nil {
				return err
			}
			f.s.evs = f.s.evs[:0]
			return f.s.deliver(ctx, ctx.Err())
		case <-f.s.beat.C:
			if left := f.s.Opts.Heartbeat - time.Since(time.Unix(0, f.lastWrite.Load())); left > 0 {
				f.s.beat.Reset(left) // the shard wrote meanwhile
				continue
			}
			f.take()
			if err := f.takeBack(); err != nil {
				return err
			}
			f.s.evs = f.s.evs[:0]
			return f.s.deliver(ctx, stream.ErrIdle)
		}
	}
}

// take gets the subscriber back from the stream or its shard.
func (f *FanSSE) take() {
	f.mu.Lock()
	if f.holder == heldByNone {
		f.holder = heldByOwn
		f.mu.Unlock()
		f.s.Sub.Unpoll()
		return
	}
	f.want = true
	f.mu.Unlock()
	<-f.back
}

// takeBack finishes what the shard left: a write error, or the rest of a
// write the socket did not take whole.
func (f *FanSSE) takeBack() error {
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	if f.unfinished {
		f.unfinished = false
		if err := f.tw.FinishWrite(); err != nil {
			return err
		}
		f.slowUntil = time.Now().Add(slowStay)
		f.s.beat.Reset(f.s.wait())
	}
	return nil
}

// release gives the subscriber up after Poll registered it; false: a
// wake-up came meanwhile, so the caller keeps it and polls again.
func (f *FanSSE) release(byShard bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kicked {
		f.kicked = false
		return false
	}
	if byShard && f.want {
		f.handBackLocked()
		return true
	}
	f.holder = heldByNone
	return true
}

// kick is the subscriber's wake (called by the stream, its lock held).
func (f *FanSSE) kick() {
	f.mu.Lock()
	if f.holder != heldByNone {
		f.kicked = true
		f.mu.Unlock()
		return
	}
	f.holder = heldByShard
	f.mu.Unlock()
	if !f.shard.push(f) {
		f.handBack() // the fan is closed
	}
}

func (f *FanSSE) handBack() {
	f.mu.Lock()
	f.handBackLocked()
	f.mu.Unlock()
}

func (f *FanSSE) handBackLocked() {
	f.want = false
	f.holder = heldByOwn
	f.back <- struct{}{} // never blocks: one hand-back per take
}

// shard is one writer goroutine and the subscribers it serves in turn.
type shard struct {
	signal chan struct{}

	mu     sync.Mutex
	ready  []*FanSSE
	idle   bool
	closed bool

	// The shard goroutine's own.
	spare  []*FanSSE
	evs    []*event.Event
	frames [][]byte
}

// push queues f; false once the shard is closed.
func (sh *shard) push(f *FanSSE) bool {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return false
	}
	sh.ready = append(sh.ready, f)
	wake := sh.idle
	sh.idle = false
	sh.mu.Unlock()
	if wake {
		select {
		case sh.signal <- struct{}{}:
		default:
		}
	}
	return true
}

func (sh *shard) close() {
	sh.mu.Lock()
	sh.closed = true
	sh.mu.Unlock()
	select {
	case sh.signal <- struct{}{}:
	default:
	}
}

// run serves the ready subscribers in turn, one write each per turn, until
// the shard is closed and holds none.
func (sh *shard) run() {
	for {
		sh.mu.Lock()
		for len(sh.ready) == 0 {
			if sh.closed {
				sh.mu.Unlock()
				return
			}
			sh.idle = true
			sh.mu.Unlock()
			<-sh.signal
			sh.mu.Lock()
		}
		batch := sh.ready
		sh.ready = sh.spare[:0]
		sh.mu.Unlock()
		for i, f := range batch {
			batch[i] = nil
			sh.serve(f)
			if i%yieldEvery == yieldEvery-1 {
				// A shard that always has work never blocks, and its
				// processor would serve the goroutines the network
				// poller readied (the next publish) only when Go's
				// sysmon preempts it (10 ms): let them in between.
				runtime.Gosched()
			}
		}
		sh.spare = batch[:0]
	}
}

// yieldEvery is how many subscribers a shard serves between yields (a
// few hundred µs of writes).
const yieldEvery = 64

// serve makes one write to f, if it has events, and then queues it again
// (more may be there), parks it with the stream or hands it back.
func (sh *shard) serve(f *FanSSE) {
	for {
		f.mu.Lock()
		if f.want {
			f.handBackLocked()
			f.mu.Unlock()
			return
		}
		f.kicked = false
		f.mu.Unlock()
		evs, r := f.s.Sub.Poll(sh.evs[:0], f.wake)
		sh.evs = evs
		switch r {
		case stream.PollBlocking:
			f.handBack()
			return
		case stream.PollWait:
			if f.release(true) {
				return
			}
			continue // woken meanwhile
		}
		done, err := sh.write(f, evs)
		clear(sh.evs)
		if err != nil || !done {
			f.err, f.unfinished = err, !done && err == nil
			f.handBack()
			return
		}
		if !sh.push(f) {
			f.handBack()
		}
		return
	}
}

// write writes evs to f without waiting for its socket.
func (sh *shard) write(f *FanSSE, evs []*event.Event) (done bool, err error) {
	frame := wire.SSEFrame
	if f.s.Opts.EventTypes {
		frame = wire.SSEFrameTyped
	}
	frames := sh.frames[:0]
	for _, e := range evs {
		frames = append(frames, frame(e))
	}
	n, done, err := f.tw.TryWriteFrames(frames)
	clear(frames)
	sh.frames = frames[:0]
	if err != nil {
		return false, err
	}
	observe(f.s.Opts.Observer, evs, n)
	f.lastWrite.Store(time.Now().UnixNano())
	return done, nil
}
