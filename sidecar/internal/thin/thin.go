// Package thin caps the events delivered to one subscriber that asked
// for at most N a second (?max_rate=N). A token bucket of one token,
// refilled N times a second (golang.org/x/time/rate), decides per event:
// an event that finds a token is delivered, one that does not is left
// out and counted. The count and seq range left out go to the subscriber
// as an event.Skipped marker before its next delivered event, or on its
// own once the rate would allow an event and none came, so thinning is
// never silent. Control markers of the stream (gap, offline, reset) are
// always delivered and take no token.
//
// The bucket holds a tenth of a second's worth of tokens (at least one):
// enough that a stream whose events arrive in batches (an emitter's
// tick, a subscriber catching up) is thinned to N a second rather than
// to one event per batch, little enough that delivered events stay
// spread out: no second sees more than N plus that tenth. The caller
// passes the time, so tests drive the clock.
package thin

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/sidestream/sidestream/core/event"
)

// MaxRate is the largest rate a subscriber may ask for: beyond it no
// subscriber could be served that fast, so a bigger value is a mistake.
const MaxRate = 1_000_000

// ErrRate is returned by Check for a rate out of 1..MaxRate.
var ErrRate = fmt.Errorf("must be an integer between 1 and %d", MaxRate)

// Check validates a requested rate.
func Check(perSecond uint64) error {
	if perSecond < 1 || perSecond > MaxRate {
		return ErrRate
	}
	return nil
}

// Thinner thins one subscriber's events. It is used by that subscriber's
// writer goroutine only.
type Thinner struct {
	lim *rate.Limiter
	// The range left out and not yet reported (n == 0: none).
	stream   string
	from, to uint64
	n        uint64
}

// New returns a Thinner for at most perSecond events a second (checked
// by Check); its bucket starts full.
func New(perSecond uint64) *Thinner {
	return &Thinner{lim: rate.NewLimiter(rate.Limit(perSecond), Burst(perSecond))}
}

// Burst is the bucket size for perSecond: a tenth of a second's worth,
// at least one.
func Burst(perSecond uint64) int {
	return int(max(1, (perSecond+9)/10))
}

// Thin appends to dst what of evs (in seq order) goes out at now: the
// events the rate allows, each preceded by the marker of what was left
// out before it, and every control marker of the stream.
func (t *Thinner) Thin(now time.Time, dst, evs []*event.Event) []*event.Event {
	for _, e := range evs {
		if !e.IsControl() && !t.lim.AllowN(now, 1) {
			t.skip(e)
			continue
		}
		dst = t.Flush(dst)
		dst = append(dst, e)
	}
	return dst
}

func (t *Thinner) skip(e *event.Event) {
	if t.n == 0 {
		t.stream, t.from = e.Stream, e.Seq
	}
	t.to = e.Seq
	t.n++
}

// Pending reports whether events were left out and not yet reported.
func (t *Thinner) Pending() bool { return t.n > 0 }

// Due is how long after now the pending marker should go out on its own
// if no event comes first: when the rate would allow the next event, so
// a subscriber learns of a thinned burst no later than it would have
// received its next event. Zero when nothing is pending or it is due.
func (t *Thinner) Due(now time.Time) time.Duration {
	if t.n == 0 {
		return 0
	}
	missing := 1 - t.lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing / float64(t.lim.Limit()) * float64(time.Second)))
}

// Flush appends the pending marker to dst, if any, and clears it.
func (t *Thinner) Flush(dst []*event.Event) []*event.Event {
	if t.n == 0 {
		return dst
	}
	dst = append(dst, event.Skipped(t.stream, t.from, t.to, t.n))
	t.n = 0
	return dst
}
