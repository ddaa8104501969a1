package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/tracker"
)

// trackMsg is one stored message of a user as an event.
type trackMsg struct {
	ev    *event.Event
	js    uint64 // its stream sequence
	start bool   // the user's sequence (re)starts here
	id    string // its message id (one per Append)
}

// trackName is the tracker stream name of a user's subject.
func trackName(subj string) string {
	return tracker.StreamName(untoken(strings.TrimPrefix(subj, trackSubject)))
}

// trackDecode turns a stored message of stream name into a trackMsg.
func trackDecode(name string, hdr nats.Header, data []byte, js uint64, at time.Time) (trackMsg, error) {
	seq, err := strconv.ParseUint(hdr.Get(trackHdrSeq), 10, 64)
	if err != nil || seq == 0 {
		return trackMsg{}, fmt.Errorf("message %d of %s: no %s header", js, name, trackHdrSeq)
	}
	ev := &event.Event{Stream: name, Seq: seq, Type: hdr.Get(trackHdrType), Time: at.UTC(), Data: data}
	start := hdr.Get(trackHdrStart) == trackStartValue
	return trackMsg{ev: ev, js: js, start: start, id: hdr.Get(jetstream.MsgIDHeader)}, nil
}

// lastMsg returns the newest message of subj (found false if none).
func (l *TrackerLog) lastMsg(ctx context.Context, subj string) (trackMsg, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
	defer cancel()
	m, err := l.st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return trackMsg{}, false, nil
	}
	if err != nil {
		return trackMsg{}, false, fmt.Errorf("get last of %s: %w", subj, trackUnavailable(err))
	}
	tm, err := trackDecode(trackName(subj), m.Header, m.Data, m.Sequence, m.Time)
	return tm, err == nil, err
}

// nextMsg returns the first message of subj at stream sequence js or
// later.
func (l *TrackerLog) nextMsg(ctx context.Context, subj string, js uint64) (trackMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, trackOpTimeout)
	defer cancel()
	m, err := l.st.GetMsg(ctx, js, jetstream.WithGetMsgSubject(subj))
	if err != nil {
		return trackMsg{}, fmt.Errorf("get next of %s from %d: %w", subj, js, trackUnavailable(err))
	}
	return trackDecode(trackName(subj), m.Header, m.Data, m.Sequence, m.Time)
}

// head is the newest seq of subj, or the seq below where its sequence
// will restart when it holds nothing.
func (l *TrackerLog) head(ctx context.Context, subj string) (uint64, error) {
	p, err := l.nextPos(ctx, subj)
	return p.seq, err
}

// readAfter returns up to limit messages of subj with seqs above after,
// ascending.
func (l *TrackerLog) readAfter(ctx context.Context, subj string, after uint64, limit int) ([]trackMsg, error) {
	last, found, err := l.lastMsg(ctx, subj)
	if err != nil || !found || last.ev.Seq <= after || limit <= 0 {
		return nil, err
	}
	if last.ev.Seq == after+1 {
		return []trackMsg{last}, nil // the usual fill: one message missed
	}
	from, err := l.locate(ctx, subj, after, last)
	if err != nil {
		return nil, err
	}
	return l.getRange(ctx, subj, from, last.js, limit)
}

// locate returns the stream sequence of the first message of subj whose
// seq is above after (last's seq is): a binary search over stream
// sequences, each step one next-by-subject get. A user seq never exceeds
// its message's stream sequence, so that message is at after+1 or later.
func (l *TrackerLog) locate(ctx context.Context, subj string, after uint64, last trackMsg) (uint64, error) {
	found := last.js
	// A message before found with a seq above after is in [lo, hi).
	lo, hi := after+1, last.js
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := l.nextMsg(ctx, subj, mid)
		if err != nil {
			return 0, err
		}
		switch {
		case m.js >= found: // none in [mid, found)
			hi = mid
		case m.ev.Seq > after:
			found, hi = m.js, mid
		default:
			lo = m.js + 1
		}
	}
	return found, nil
}

// getRange reads up to limit messages of subj from stream sequence from
// to last, one get each. Gets need only the stream's leader; a consumer
// (fewer round trips for long reads) needs the meta leader to be created,
// so reads would stop while the cluster elects one.
func (l *TrackerLog) getRange(ctx context.Context, subj string, from, last uint64, limit int) ([]trackMsg, error) {
	var out []trackMsg
	for js := from; js <= last && len(out) < limit; {
		m, err := l.nextMsg(ctx, subj, js)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		js = m.js + 1
	}
	return out, nil
}

// trackEvents returns the events of msgs.
func trackEvents(msgs []trackMsg) []*event.Event {
	out := make([]*event.Event, len(msgs))
	for i, m := range msgs {
		out[i] = m.ev
	}
	return out
}
