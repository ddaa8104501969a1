package bench

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 5 min at 3 significant digits.
const (
	histLow   = 1
	histHigh  = int64(5 * time.Minute / time.Microsecond)
	histDigit = 3
	histShard = 16
)

// latencies is an HDR histogram of microseconds shared by many recording
// goroutines. It is sharded so that a thousand subscribers do not queue on
// one lock; each records a whole read's worth of values per lock.
type latencies struct {
	name   string
	shards [histShard]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
	}
}

func newLatencies(name string) *latencies {
	l := &latencies{name: name}
	for i := range l.shards {
		l.shards[i].h = hdrhistogram.New(histLow, histHigh, histDigit)
	}
	return l
}

// record adds values (µs) to shard key%histShard.
func (l *latencies) record(key int, vals ...int64) {
	if len(vals) == 0 {
		return
	}
	s := &l.shards[uint(key)%histShard]
	s.mu.Lock()
	for _, v := range vals {
		_ = s.h.RecordValue(clampUS(v))
	}
	s.mu.Unlock()
}

// clampUS keeps a value inside the histogram's range: a negative latency
// (clock skew between event time and receive time) counts as the minimum.
func clampUS(v int64) int64 {
	return min(max(v, histLow), histHigh)
}

// merged returns one histogram of every shard.
func (l *latencies) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(histLow, histHigh, histDigit)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// Latency summarizes one histogram; durations are in milliseconds.
type Latency struct {
	Name    string   `json:"name"`
	Count   int64    `json:"count"`
	Min     float64  `json:"min_ms"`
	Mean    float64  `json:"mean_ms"`
	P50     float64  `json:"p50_ms"`
	P90     float64  `json:"p90_ms"`
	P99     float64  `json:"p99_ms"`
	P999    float64  `json:"p999_ms"`
	Max     float64  `json:"max_ms"`
	Buckets []Bucket `json:"buckets"`
	// Percentiles is the percentile curve (for plots): percentile → ms.
	Percentiles []Point `json:"percentiles"`
}

// Bucket is one row of the vegeta-style histogram: values in [From, To).
// To is +Inf (JSON null) for the last bucket.
type Bucket struct {
	From    float64  `json:"from_ms"`
	To      *float64 `json:"to_ms"`
	Count   int64    `json:"count"`
	Percent float64  `json:"percent"`
}

// Point is one (x, y) pair of a curve.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// DefaultBuckets are the histogram bucket bounds when none are given.
var DefaultBuckets = []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// ParseBuckets reads vegeta's bucket syntax "[0,1ms,10ms,100ms]" (the
// brackets are optional). Bounds must be strictly increasing.
func ParseBuckets(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil, fmt.Errorf("%w: buckets: empty list", ErrUsage)
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		d, err := time.ParseDuration(f)
		if f == "0" {
			d, err = 0, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: buckets: %q is not a duration", ErrUsage, f)
		}
		if len(out) > 0 && d <= out[len(out)-1] {
			return nil, fmt.Errorf("%w: buckets must increase: %s after %s", ErrUsage, d, out[len(out)-1])
		}
		out = append(out, d)
	}
	return out, nil
}

// summarize turns h into a Latency with counts per bucket.
func summarize(name string, h *hdrhistogram.Histogram, bounds []time.Duration) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	l := Latency{Name: name, Count: h.TotalCount()}
	if l.Count > 0 {
		l.Min, l.Mean, l.Max = ms(h.Min()), h.Mean()/1000, ms(h.Max())
		l.P50, l.P90 = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90))
		l.P99, l.P999 = ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9))
		for _, q := range []float64{0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100} {
			l.Percentiles = append(l.Percentiles, Point{X: q, Y: ms(h.ValueAtQuantile(q))})
		}
	}
	l.Buckets = bucketCounts(h, bounds)
	return l
}

// bucketCounts counts the histogram's values per [bound[i], bound[i+1]).
// A bar of the HDR distribution is counted by its lower edge, exact to the
// histogram's precision.
func bucketCounts(h *hdrhistogram.Histogram, bounds []time.Duration) []Bucket {
	if len(bounds) == 0 {
		bounds = DefaultBuckets
	}
	out := make([]Bucket, len(bounds))
	for i, b := range bounds {
		out[i].From = float64(b.Microseconds()) / 1000
		if i+1 < len(bounds) {
			to := float64(bounds[i+1].Microseconds()) / 1000
			out[i].To = &to
		}
	}
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.From) / 1000
		i := len(out) - 1
		for i > 0 && v < out[i].From {
			i--
		}
		out[i].Count += bar.Count
	}
	if total := h.TotalCount(); total > 0 {
		for i := range out {
			out[i].Percent = math.Round(float64(out[i].Count)*10000/float64(total)) / 100
		}
	}
	return out
}
