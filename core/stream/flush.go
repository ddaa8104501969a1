package stream

import (
	"context"
	"fmt"
)

// defaultCommitsInFlight: with two commits of a stream in the store, a
// caller whose append queued while one commit syncs is submitted at
// once instead of after it, so it waits for about one commit, not two.
const defaultCommitsInFlight = 2

// Submitter is a Committer that takes an append without waiting until it
// is durable, so a stream can keep more than one commit in flight.
type Submitter interface {
	Committer
	// Submit returns once the store holds a; wait then returns its
	// outcome. Appends submitted one after the other (each Submit
	// returned before the next began) commit in that order.
	//
	// After an append with events failed, the store refuses every later
	// append of that stream whose first event comes after the failed
	// one's first, until one starts at or before it again: a stream
	// submits its next append before it knows the outcome of the one in
	// flight, and committing the later one would leave a hole.
	Submit(ctx context.Context, a Append) (wait func() error, err error)
}

// flight is one commit submitted to the store and not yet settled.
type flight struct {
	batch  []*pending
	append Append
	// fenced: the append carries events, so the store refuses it if one
	// submitted before it failed (see Submitter).
	fenced  bool
	settled bool
	err     error
}

// claimSubmitLocked makes the caller the one goroutine that submits the
// queued appends, if they may go to the store now (s.mu held).
func (s *Stream) claimSubmitLocked() bool {
	if s.submitting || len(s.queue) == 0 || !s.mayFollowLocked() {
		return false
	}
	s.submitting = true
	return true
}

// mayFollowLocked reports whether the queue may be submitted now: when
// nothing is in flight, or behind commits in flight that all carry
// events when the queue does too. Only then does the store's fence
// refuse the new commit if one before it fails; an append without
// events (a checkpoint alone, a lease) gives it nothing to check, so it
// waits for the ones before it to settle.
func (s *Stream) mayFollowLocked() bool {
	if s.broken != nil {
		return false
	}
	if len(s.flights) == 0 {
		return true
	}
	if len(s.flights) >= s.depth {
		return false
	}
	for _, f := range s.flights {
		if !f.fenced || f.err != nil {
			return false // nothing to fence with, or known to fail
		}
	}
	for _, p := range s.queue {
		if len(p.append.Events) > 0 {
			return true
		}
	}
	return false
}

// commitNext is run by the goroutine that claimed the submit: it merges
// every queued append into one commit (concurrent publishers share a
// transaction), submits it, passes the submit on (a second commit may
// go while this one is in flight), waits and settles. keep says the
// caller may take the next submit turn itself: the result.
func (s *Stream) commitNext(ctx context.Context, keep bool) (more bool) {
	s.mu.Lock()
	f := &flight{batch: s.queue}
	s.queue = nil
	f.append = mergeAppends(s.name, f.batch)
	f.fenced = len(f.append.Events) > 0
	s.flights = append(s.flights, f)
	s.mu.Unlock()

	wait, err := s.submit(ctx, f.append)

	s.mu.Lock()
	if err != nil {
		// Refused before the store took it: nothing may follow it.
		f.settled, f.err = true, err
	}
	s.submitting = false
	if s.claimSubmitLocked() {
		go s.commitLoop(ctx)
	}
	s.mu.Unlock()
	if err == nil {
		err = wait()
	}
	return s.settle(ctx, f, err, keep)
}

// commitLoop submits batches on a goroutine of its own while it may.
func (s *Stream) commitLoop(ctx context.Context) {
	for s.commitNext(ctx, true) {
	}
}

// submit hands a to the store: err if it was refused at once, else the
// outcome comes from wait. Without a Submitter it commits in full here.
func (s *Stream) submit(ctx context.Context, a Append) (wait func() error, err error) {
	if len(a.Events) == 0 && a.Head == 0 && a.Checkpoint == nil {
		return noWait, nil
	}
	if s.submitter == nil {
		if err := s.store.Commit(ctx, a); err != nil {
			return nil, err
		}
		return noWait, nil
	}
	return s.submitter.Submit(ctx, a)
}

func noWait() error { return nil }

// settle records f's outcome and resolves, in submit order, every flight
// whose outcome is known and whose predecessors are resolved: so events
// become visible and callers are answered strictly in seq order, a
// commit only once every one before it succeeded. It reports whether
// the caller (keep) took the next submit turn.
func (s *Stream) settle(ctx context.Context, f *flight, err error, keep bool) (claimed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.err, f.settled = err, true
	for len(s.flights) > 0 && s.flights[0].settled {
		s.resolveLocked(s.flights[0])
		s.flights[0] = nil
		s.flights = s.flights[1:]
	}
	if len(s.flights) == 0 {
		s.broken = nil // every follower of the failure has settled
	}
	if s.claimSubmitLocked() {
		if keep {
			return true
		}
		go s.commitLoop(ctx)
		return false
	}
	if len(s.queue) == 0 && len(s.flights) == 0 && !s.submitting {
		close(s.flushDone)
		s.flushDone = nil
	}
	return false
}

// resolveLocked makes a settled flight visible and answers its callers,
// or fails it and everything behind it (s.mu held).
func (s *Stream) resolveLocked(f *flight) {
	err := f.err
	switch {
	case s.broken != nil:
		// Submitted behind a failed commit: the store refused it, and if
		// a store did not, its seqs still follow the failed ones.
		err = s.broken
	case err != nil:
		err = fmt.Errorf("commit %s: %w", s.name, err)
		s.broken = err
		for _, p := range s.rollbackLocked(err) {
			p.done <- err
		}
	default:
		s.rmu.Lock()
		for _, p := range f.batch {
			s.makeVisibleLocked(p.events)
		}
		s.rmu.Unlock()
		if !s.cfg.Persist {
			s.lease = max(s.lease, f.append.Head)
		}
		if f.append.Checkpoint != nil {
			s.durableCP = f.append.Checkpoint
		}
	}
	for _, p := range f.batch {
		p.done <- err
	}
}

// rollbackLocked undoes a failed commit so that it leaves no trace: the
// appends queued behind it fail too (their seqs follow the failed ones and
// their checkpoints may build on the failed one), and seqs continue from
// the last visible one, so the next success has no hole (s.mu held). It
// returns the queued appends to answer with the failure; those already
// submitted behind it fail as they settle.
func (s *Stream) rollbackLocked(err error) []*pending {
	queued := s.queue
	s.queue = nil
	s.rmu.RLock()
	s.last = s.head
	s.rmu.RUnlock()
	s.failed = err
	return queued
}

// Recover takes the mark a failed commit left: failed reports whether a
// commit failed since the last call, and durable is the checkpoint of the
// newest successful commit since the stream was opened (nil: none), which
// is what an emitter must continue from. Appends with a checkpoint are
// accepted again afterwards.
func (s *Stream) Recover() (durable *Checkpoint, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	failed = s.failed != nil
	s.failed = nil
	return s.durableCP, failed
}

// waitFlushed returns once no commit of the stream is queued or in
// flight.
func (s *Stream) waitFlushed(ctx context.Context) error {
	s.mu.Lock()
	done := s.flushDone
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for commits of %s: %w", s.name, ctx.Err())
	}
}

func mergeAppends(name string, batch []*pending) Append {
	if len(batch) == 1 {
		return batch[0].append
	}
	merged := Append{Stream: name}
	for _, p := range batch {
		merged.Events = append(merged.Events, p.append.Events...)
		merged.Head = max(merged.Head, p.append.Head)
		if p.append.Checkpoint != nil {
			merged.Checkpoint = p.append.Checkpoint
		}
	}
	return merged
}
