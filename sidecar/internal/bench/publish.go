package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Where fanout's events come from (Options.Publish).
const (
	// publishMagic: a magic emitter per stream on the server.
	publishMagic = "magic"
	// publishHTTP: the bench POSTs each event to /track/{user}, with
	// the publish time in its data: the delivery latency is end to end.
	publishHTTP = "http"
)

func (e *env) publishSource() (string, error) {
	switch e.o.Publish {
	case "", publishMagic:
		return publishMagic, nil
	case publishHTTP:
		return publishHTTP, nil
	}
	return "", fmt.Errorf("%w: publish %q (want magic or http)", ErrUsage, e.o.Publish)
}

// fanStream is one stream of a fanout run.
type fanStream struct {
	path    string // the subscribers' path
	emitter string // magic: the emitter, deleted at the end
	user    string // http: the tracker user published to
}

// fanoutStreams makes n streams of the source, each at rate; remove
// deletes the emitters it created (also when it failed midway).
func (e *env) fanoutStreams(ctx context.Context, src, transport string, n int, rate float64) (streams []fanStream, remove func(), err error) {
	streams = make([]fanStream, n)
	remove = func() { e.deleteStreams(streams) }
	prefix := "bench-" + runID() + "-"
	for i := range streams {
		if src == publishHTTP {
			user := prefix + strconv.Itoa(i)
			// after=0: from the user's first event, so nothing published
			// before the subscription registered is missed.
			streams[i] = fanStream{path: "/" + transport + "/track/" + user + "?after=0", user: user}
			continue
		}
		id, err := e.createEmitter(ctx, "magic", map[string]any{"rate": rate})
		if err != nil {
			return nil, remove, err
		}
		streams[i] = fanStream{path: "/api/v1/streams/" + id + "/" + transport, emitter: id}
	}
	for _, s := range streams {
		if s.emitter == "" {
			continue
		}
		if err := e.waitServed(ctx, transport, s.path); err != nil {
			return nil, remove, err
		}
	}
	return streams, remove, nil
}

func (e *env) deleteStreams(streams []fanStream) {
	for _, s := range streams {
		if s.emitter != "" {
			e.deleteEmitter(s.emitter)
		}
	}
}

// publishWorkers is how many publishes may be in flight per stream: a
// publish is answered once durable, and on a machine the subscribers
// keep busy it waits its turn behind them, so a few connections cap the
// rate well below what the server takes (4 per stream gave 23/s of
// 1000/s; 30 gave 700/s). Enough for the rate at 100 ms a publish, at
// least 4, at most 128.
func publishWorkers(perStream float64) int {
	return min(128, max(4, int(perStream/10)))
}

// startPublishers starts, for src http, the workers that POST events
// to the streams' users at rate each, paced together, until the returned
// stop is called (it waits for them; calling it again is a no-op).
func (e *env) startPublishers(ctx context.Context, src string, streams []fanStream, perStream float64) (stop func()) {
	if src != publishHTTP {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	total := perStream * float64(len(streams))
	lim := rate.NewLimiter(rate.Limit(total), max(1, int(total/1000)))
	hreq := e.hist("publish")
	var wg sync.WaitGroup
	workers := min(256, publishWorkers(perStream)*len(streams))
	for w := range workers {
		wg.Go(func() {
			if err := e.publishLoop(ctx, w, workers, streams, lim, hreq); err != nil && ctx.Err() == nil {
				e.fail(err)
			}
		})
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// publishLoop is worker w of n: it publishes to the streams w, w+n, …
// in turn, each publish when lim allows one.
func (e *env) publishLoop(ctx context.Context, w, n int, streams []fanStream, lim *rate.Limiter, h *latencies) error {
	c, err := e.openHTTP(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stopWatch := closeOnDone(ctx, c)
	defer stopWatch()
	lat := make([]int64, 0, 64)
	defer func() { h.record(w, lat...) }()
	for i := w; ; i += n {
		if err := lim.Wait(ctx); err != nil {
			return nil
		}
		user := streams[i%len(streams)].user
		t0 := time.Now()
		body := `{"timestamp":"` + t0.UTC().Format(time.RFC3339Nano) + `"}`
		status, answer, err := c.do(e.jsonRequest("POST", "/track/"+user, body))
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("%w: POST /track: %d %.120s", ErrStatus, status, answer)
		}
		if e.measuring() {
			if lat = append(lat, time.Since(t0).Microseconds()); len(lat) == cap(lat) {
				h.record(w, lat...)
				lat = lat[:0]
			}
		}
	}
}
