package bench

import (
	"context"
	"crypto/sha1" //nolint:gosec // RFC 6455's accept key is SHA-1 by definition
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// baseline is what `bench --baseline` measures beside the target: a bare
// net/http server doing the same jobs with no plugin and no durability.
// Magic events come from a goroutine paced like the magic plugin, into
// an in-memory slice; a tracker publish is an in-memory append answered
// 202; a Fibonacci next is a mutex counter. Subscribers get each event's
// cached SSE or WebSocket encoding (the server's own, from wire), every
// event available written at once, as sidestream does. It serves just
// the routes the fanout, track and fib scenarios use.
type baseline struct {
	srv *http.Server
	ln  net.Listener
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup

	mu       sync.Mutex
	next     int
	streams  map[string]*memStream // emitter ids and "track:" + user
	counters map[string]*uint64    // fibonacci emitters' positions
	stops    map[string]context.CancelFunc
}

// baselineScenarios are the scenarios the baseline server can run.
var baselineScenarios = map[string]bool{"fanout": true, "track": true, "fib": true}

// startBaseline serves the baseline on a random loopback port.
func startBaseline() (*baseline, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	b := &baseline{ln: ln, streams: map[string]*memStream{}, counters: map[string]*uint64{}, stops: map[string]context.CancelFunc{}}
	b.ctx, b.end = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/emitters", b.create)
	mux.HandleFunc("DELETE /api/v1/emitters/{id}", b.delete)
	mux.HandleFunc("POST /api/v1/emitters/{id}/commands/{cmd}", b.command)
	mux.HandleFunc("GET /api/v1/streams/{id}/sse", func(w http.ResponseWriter, r *http.Request) { b.sse(w, r, r.PathValue("id")) })
	mux.HandleFunc("GET /api/v1/streams/{id}/ws", func(w http.ResponseWriter, r *http.Request) { b.ws(w, r, r.PathValue("id")) })
	mux.HandleFunc("GET /track/{user}", b.track)
	mux.HandleFunc("POST /track/{user}", b.track)
	mux.HandleFunc("GET /sse/track/{user}", func(w http.ResponseWriter, r *http.Request) { b.sse(w, r, "track:"+r.PathValue("user")) })
	mux.HandleFunc("GET /ws/track/{user}", func(w http.ResponseWriter, r *http.Request) { b.ws(w, r, "track:"+r.PathValue("user")) })
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return b.ctx }}
	b.wg.Go(func() { _ = b.srv.Serve(ln) })
	return b, nil
}

// URL is the baseline's base URL.
func (b *baseline) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops generators and subscribers and closes every connection.
func (b *baseline) Close(ctx context.Context) error {
	b.end()
	err := b.srv.Close()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("baseline: close: %w", ctx.Err())
	}
}

// stream returns the stream named name, made on first use.
func (b *baseline) stream(name string) *memStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.streams[name]
	if s == nil {
		s = &memStream{name: name, wake: make(chan struct{})}
		b.streams[name] = s
	}
	return s
}

func (b *baseline) create(w http.ResponseWriter, r *http.Request) {
	var req api.CreateEmitter
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.next++
	id := "baseline-" + strconv.Itoa(b.next)
	b.mu.Unlock()
	switch req.Kind {
	case "magic":
		var c struct{ Rate float64 }
		if err := json.Unmarshal(req.Config, &c); err != nil || !(c.Rate > 0) {
			http.Error(w, "magic: want a positive rate", http.StatusBadRequest)
			return
		}
		ctx, stop := context.WithCancel(b.ctx)
		b.mu.Lock()
		b.stops[id] = stop
		b.mu.Unlock()
		s := b.stream(id)
		b.wg.Go(func() { runMagic(ctx, s, c.Rate) })
	case "fibonacci":
		b.mu.Lock()
		b.counters[id] = new(uint64)
		b.mu.Unlock()
	default:
		http.Error(w, "the baseline runs magic and fibonacci only", http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, api.Emitter{ID: id, Kind: req.Kind, Config: req.Config, CreatedAt: time.Now().UTC()})
}

func (b *baseline) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.mu.Lock()
	if stop := b.stops[id]; stop != nil {
		stop()
	}
	delete(b.stops, id)
	delete(b.counters, id)
	b.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// command is a Fibonacci emitter's next or current: a mutex counter.
func (b *baseline) command(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	pos := b.counters[r.PathValue("id")]
	if pos == nil {
		b.mu.Unlock()
		http.Error(w, "no such fibonacci emitter", http.StatusNotFound)
		return
	}
	if r.PathValue("cmd") == "next" {
		*pos++
	}
	st := api.FibState{Position: *pos, Value: strconv.FormatUint(*pos, 10)}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

// track appends the JSON body, or else ?data=, to the user's stream and
// answers 202 with its seq.
func (b *baseline) track(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !json.Valid(data) && len(data) > 0 {
		http.Error(w, "want a JSON body", http.StatusBadRequest)
		return
	}
	if len(data) == 0 {
		data, _ = json.Marshal(r.URL.Query().Get("data"))
	}
	seq := b.stream("track:"+r.PathValue("user")).append("track", data, time.Now())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(strconv.AppendUint([]byte(`{"seq":`), seq, 10))
	_, _ = w.Write([]byte("}"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// sse streams name to an SSE client from its start.
func (b *baseline) sse(w http.ResponseWriter, r *http.Request, name string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(wire.AppendSSERetry(nil, 2*time.Second))
	fl.Flush()
	b.serve(r.Context(), b.stream(name), func(evs []*event.Event, buf []byte) ([]byte, error) {
		for _, e := range evs {
			buf = append(buf, wire.SSEFrame(e)...)
		}
		_, err := w.Write(buf)
		fl.Flush()
		return buf, err
	})
}

// ws streams name to a WebSocket client from its start, one text frame
// per event (its envelope), every frame available in one write.
func (b *baseline) ws(w http.ResponseWriter, r *http.Request, name string) {
	key := r.Header.Get("Sec-WebSocket-Key")
	hj, ok := w.(http.Hijacker)
	if key == "" || !ok {
		http.Error(w, "want a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n")
	if rw.Flush() != nil {
		return
	}
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	// The client sends nothing the baseline needs; its reads end the
	// stream when it goes away.
	b.wg.Go(func() {
		defer cancel()
		var sink [512]byte
		for {
			if _, err := conn.Read(sink[:]); err != nil {
				return
			}
		}
	})
	b.serve(ctx, b.stream(name), func(evs []*event.Event, buf []byte) ([]byte, error) {
		for _, e := range evs {
			buf = wire.AppendFrame(buf, wsText, e.JSON(), nil)
		}
		_, err := conn.Write(buf)
		return buf, err
	})
}

// wsText is the WebSocket text frame opcode.
const wsText = 1

// acceptKey is RFC 6455's Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // by definition
	return base64.StdEncoding.EncodeToString(h[:])
}

// serve hands every event of s, from its first, to write (with a buffer
// to reuse) until ctx ends or a write fails.
func (b *baseline) serve(ctx context.Context, s *memStream, write func([]*event.Event, []byte) ([]byte, error)) {
	var (
		cursor int
		buf    []byte
		evs    []*event.Event
	)
	for {
		var wake <-chan struct{}
		evs, wake = s.after(cursor, evs[:0])
		if len(evs) == 0 {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		cursor += len(evs)
		var err error
		if buf, err = write(evs, buf[:0]); err != nil {
			return
		}
	}
}

// memStream is an in-memory event log with a broadcast wake-up.
type memStream struct {
	name string
	mu   sync.Mutex
	evs  []*event.Event
	wake chan struct{} // closed (and replaced) on every append
}

// append adds one event and returns its seq.
func (s *memStream) append(typ string, data []byte, now time.Time) uint64 {
	s.mu.Lock()
	seq := uint64(len(s.evs) + 1)
	s.evs = append(s.evs, &event.Event{Stream: s.name, Seq: seq, Type: typ, Time: now.UTC(), Data: data})
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return seq
}

// after appends to dst the events after the first n, or returns the
// channel closed by the next append when there are none.
func (s *memStream) after(n int, dst []*event.Event) ([]*event.Event, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= len(s.evs) {
		return dst, s.wake
	}
	return append(dst, s.evs[n:]...), nil
}

// runMagic appends magic events to s at rate per second, on a 1 ms tick
// with the elapsed time deciding how many are due (as the magic plugin).
func runMagic(ctx context.Context, s *memStream, rate float64) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start, emitted := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int64(now.Sub(start).Seconds() * rate)
			ts := now.UTC().Format(time.RFC3339Nano)
			for ; emitted < due; emitted++ {
				s.append("magic", []byte(`{"magic":`+strconv.FormatInt(emitted, 10)+`,"timestamp":"`+ts+`"}`), now)
			}
		}
	}
}

// errNoBaseline is --baseline with a scenario it cannot run.
var errNoBaseline = errors.New("--baseline runs fanout, track and fib")

// Baseline runs scenario name with o's load against a baseline server
// started in this process (no process stats: it shares the generator's).
func Baseline(ctx context.Context, name string, o Options) (*Report, error) {
	if !baselineScenarios[name] {
		return nil, fmt.Errorf("%w: %w, not %s", ErrUsage, errNoBaseline, name)
	}
	b, err := startBaseline()
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()
	o.Target, o.Targets, o.Token, o.PID = b.URL(), nil, "", -1
	return Run(ctx, name, o)
}

// CompareBaseline records in r the baseline's rate and p99 and r's ratio
// to it (both runs with the same load and generator).
func CompareBaseline(r, base *Report) {
	r.Metrics["baseline_per_second"] = base.Rate
	if base.Rate > 0 {
		r.Metrics["ratio_to_baseline"] = r.Rate / base.Rate
	}
	for _, l := range base.Latencies {
		r.Metrics["baseline_"+l.Name+"_p99_ms"] = l.P99
	}
	r.Notes = append(r.Notes, "baseline: a bare net/http server in this process, in memory, no plugin, no durability, same load")
}
