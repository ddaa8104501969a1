// Package event defines the event that flows through sidestream and its
// JSON envelope. Each encoding (the envelope here, the SSE frame made by
// the transport's encoder) is computed at most once per event, however
// many subscribers receive it.
package event

import (
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// TypeGap marks a range of seqs a subscriber did not receive because they
// are older than the history kept. Its Data is {"from":A,"to":B}.
const TypeGap = "gap"

// TypeOffline tells a subscriber that the stream's source (another node,
// the cluster's JetStream) is unreachable: it keeps waiting and delivery
// resumes when the source is back. Its Seq is the subscriber's cursor (so
// a resume point taken from it loses nothing) and its Data {"reason":R}.
const TypeOffline = "offline"

// TypeReset tells a subscriber that the stream started over without
// keeping its events (a stream with no history, after its process
// restarted): nothing between the subscriber's position and Data's start
// exists or will be delivered, and the stream continues at seq start. Its
// Seq is start-1 (so a resume point taken from it continues at start) and
// its Data {"start":N}.
const TypeReset = "reset"

// TypeSkipped tells a subscriber that asked for at most N events a second
// (?max_rate=N) that Data's skipped events, seqs from..to, were left out
// to keep to that rate. It is sent before the next event delivered (or
// once the rate allows one, if none comes). Its Seq is from-1, the
// position before the range, so a resume point taken from it is still
// the subscriber's last delivered event; its Data is
// {"skipped":K,"from":A,"to":B}, K counting the events of A..B left out
// (every seq of the range unless other events were not meant for this
// subscriber).
const TypeSkipped = "skipped"

// Event is one event of a stream. Seq is assigned by the host, strictly
// increasing per stream and never reused. Events are immutable once
// published: subscribers share the same *Event.
type Event struct {
	Stream string
	Seq    uint64
	Type   string
	Time   time.Time
	// Data is a JSON value.
	Data json.RawMessage

	sseOnce      sync.Once
	sse          []byte
	sseTypedOnce sync.Once
	sseTyped     []byte
	jsonOnce     sync.Once
	json         []byte

	// memo holds values derived from the event by its readers (a
	// filter's verdict), each computed once for all subscribers; memoMu
	// orders only the adding of an entry, reads are lock-free.
	memoMu sync.Mutex
	memo   atomic.Pointer[[]*memoEntry]
	// verdicts holds boolean verdicts by a judge's id (Verdict), made on
	// first use: a table of one or two cache lines, since a thousand
	// subscribers each look up every event they are offered.
	verdicts atomic.Pointer[verdictTable]
}

// verdictSlots is how many judges' verdicts an event keeps inline;
// further ones go through Memo.
const verdictSlots = 16

// verdictTable's slots each hold id<<2 | state (0: free).
type verdictTable [verdictSlots]atomic.Uint64

const (
	verdictPending = 1 // claimed, being judged
	verdictFalse   = 2
	verdictTrue    = 3
)

// Verdict returns judge(e) for the judge named id (> 0, unique per
// judge for the life of the process, such as a compiled filter's),
// judged at most once per event however many callers ask: the first
// claims a slot and judges, concurrent ones wait for its verdict.
func (e *Event) Verdict(id uint64, judge func(*Event) bool) bool {
	t := e.verdicts.Load()
	if t == nil {
		e.verdicts.CompareAndSwap(nil, new(verdictTable))
		t = e.verdicts.Load()
	}
	for i := range t {
		for {
			v := t[i].Load()
			if v == 0 && !t[i].CompareAndSwap(0, id<<2|verdictPending) {
				continue // another judge took the slot: look at it again
			}
			if v == 0 { // claimed: judge
				state := uint64(verdictFalse)
				if judge(e) {
					state = verdictTrue
				}
				t[i].Store(id<<2 | state)
				return state == verdictTrue
			}
			if v>>2 != id {
				break // another judge's slot
			}
			if v&3 != verdictPending {
				return v&3 == verdictTrue
			}
			runtime.Gosched() // judged right now by another caller
		}
	}
	return e.Memo(id, func(e *Event) any { return judge(e) }).(bool)
}

// memoEntry is one Memo value: computed once, by whoever asks first.
type memoEntry struct {
	key  any
	once sync.Once
	val  any
}

// MaxMemo bounds the values one event memoizes: past it (more distinct
// keys than any sane number of filters in use) Memo computes without
// keeping the value, so an event's memory stays bounded.
const MaxMemo = 64

// Memo returns the value compute derives from e for key (a comparable
// value naming the computation, such as a compiled filter), computed at
// most once per event however many subscribers ask, like the cached
// encodings. Concurrent callers with the same key wait for the first.
func (e *Event) Memo(key any, compute func(*Event) any) any {
	m := e.memoEntry(key)
	if m == nil {
		return compute(e)
	}
	m.once.Do(func() { m.val = compute(e) })
	return m.val
}

// memoEntry finds or adds key's entry (nil: the memo is full). The list
// is copied on write, so a lookup is one atomic load and a short scan.
func (e *Event) memoEntry(key any) *memoEntry {
	if l := e.memo.Load(); l != nil {
		for _, m := range *l {
			if m.key == key {
				return m
			}
		}
	}
	e.memoMu.Lock()
	defer e.memoMu.Unlock()
	var old []*memoEntry
	if l := e.memo.Load(); l != nil {
		old = *l
		for _, m := range old {
			if m.key == key {
				return m
			}
		}
	}
	if len(old) >= MaxMemo {
		return nil
	}
	m := &memoEntry{key: key}
	l := append(append(make([]*memoEntry, 0, len(old)+1), old...), m)
	e.memo.Store(&l)
	return m
}

// Gap returns the marker for the missing seqs from..to (inclusive).
func Gap(stream string, from, to uint64) *Event {
	data := []byte(`{"from":` + strconv.FormatUint(from, 10) + `,"to":` + strconv.FormatUint(to, 10) + `}`)
	return &Event{Stream: stream, Seq: to, Type: TypeGap, Time: time.Now().UTC(), Data: data}
}

// Offline returns the marker telling the subscriber whose cursor is at
// seq that the stream's source is lost for reason.
func Offline(stream string, seq uint64, reason string) *Event {
	data := append(AppendJSONString([]byte(`{"reason":`), reason), '}')
	return &Event{Stream: stream, Seq: seq, Type: TypeOffline, Time: time.Now().UTC(), Data: data}
}

// Reset returns the marker telling a subscriber that the stream started
// over at seq start.
func Reset(stream string, start uint64) *Event {
	data := []byte(`{"start":` + strconv.FormatUint(start, 10) + `}`)
	return &Event{Stream: stream, Seq: start - 1, Type: TypeReset, Time: time.Now().UTC(), Data: data}
}

// Skipped returns the marker for the n events of seqs from..to that a
// rate-capped subscriber was not sent.
func Skipped(stream string, from, to, n uint64) *Event {
	data := []byte(`{"skipped":` + strconv.FormatUint(n, 10) + `,"from":` + strconv.FormatUint(from, 10) +
		`,"to":` + strconv.FormatUint(to, 10) + `}`)
	return &Event{Stream: stream, Seq: from - 1, Type: TypeSkipped, Time: time.Now().UTC(), Data: data}
}

// IsControl reports whether e is a control marker (gap, offline, reset,
// skipped) rather than an event of the stream.
func (e *Event) IsControl() bool {
	return e.Type == TypeGap || e.Type == TypeOffline || e.Type == TypeReset || e.Type == TypeSkipped
}

// IsGap reports whether e is a gap marker.
func (e *Event) IsGap() bool { return e.Type == TypeGap }

// JSON returns the envelope encoding, computed once: the JSON shape of an
// event in REST pages and WebSocket frames, {"stream","seq","type",
// "time","data"}, declared for API users as api.Event in sidecar/api
// (which core does not import; sidecar/internal/httpapi tests that the
// two agree).
func (e *Event) JSON() []byte {
	e.jsonOnce.Do(func() {
		// Sized up front: growing from nil cost four extra allocations.
		e.json = e.AppendJSON(make([]byte, 0, len(e.Data)+len(e.Stream)+len(e.Type)+96))
	})
	return e.json
}

// AppendJSON appends the envelope encoding to dst without caching.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"stream":`...)
	dst = AppendJSONString(dst, e.Stream)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"type":`...)
	dst = AppendJSONString(dst, e.Type)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	if len(e.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

// SSE returns the event's Server-Sent Events frame, made by encode the
// first time any subscriber asks and shared by all of them afterwards.
// The frame's format belongs to the transport (sidecar/internal/wire
// encodes it with hertz-contrib/sse, which core may not import): every
// caller passes that one encoder.
func (e *Event) SSE(encode func(*Event) []byte) []byte {
	e.sseOnce.Do(func() { e.sse = encode(e) })
	return e.sse
}

// SSETyped is SSE for the second frame a transport may offer, the one
// that names the event's type (asked for by few subscribers, so made only
// when one does), cached the same way.
func (e *Event) SSETyped(encode func(*Event) []byte) []byte {
	e.sseTypedOnce.Do(func() { e.sseTyped = encode(e) })
	return e.sseTyped
}

// AppendJSONString appends s as a JSON string. The common case (ASCII
// with nothing to escape: ids, names, types) is copied as is; anything
// else goes through encoding/json, so the escaping rules exist once.
func AppendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// Draft is an event before its stream assigns the seq.
type Draft struct {
	Type string
	Time time.Time
	Data json.RawMessage
}

// MarshalJSON is the envelope encoding (JSON), so events nest in other
// JSON documents (a batch between nodes) without a second encoder.
func (e *Event) MarshalJSON() ([]byte, error) { return e.JSON(), nil }

// UnmarshalJSON reads the envelope encoding back (what another node sent).
func (e *Event) UnmarshalJSON(b []byte) error {
	var env struct {
		Stream string          `json:"stream"`
		Seq    uint64          `json:"seq"`
		Type   string          `json:"type"`
		Time   time.Time       `json:"time"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return err
	}
	*e = Event{Stream: env.Stream, Seq: env.Seq, Type: env.Type, Time: env.Time, Data: env.Data}
	return nil
}
