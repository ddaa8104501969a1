package httpapi

import (
	"context"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
)

// maxFilterScan bounds the events one filtered history page looks at:
// a filter that matches rarely answers a short (or empty) page whose
// next/prev continue where the scan stopped, instead of reading the
// whole history in one request.
const maxFilterScan = 10 * maxPage

// queryFilter reads ?filter= (nil: absent). A refused expression is a
// *filter.Error, answered 400 by httperr.For with its position.
func (s *Server) queryFilter(c *app.RequestContext) (*filter.Filter, error) {
	q, ok := c.GetQuery("filter")
	if !ok {
		return nil, nil
	}
	return s.filters.Get(q)
}

// readAfterFiltered is Stream.ReadAfter keeping only f's matches: up to
// limit of them, and the last seq it looked at (the next page's after),
// which is beyond the last match when the scan went on without one.
func readAfterFiltered(ctx context.Context, st *stream.Stream, after uint64, limit int, f *filter.Filter) ([]*event.Event, uint64, error) {
	if f == nil {
		evs, err := st.ReadAfter(ctx, after, limit)
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		return evs, after, err
	}
	var out []*event.Event
	for scanned := 0; len(out) < limit && scanned < maxFilterScan; {
		evs, err := st.ReadAfter(ctx, after, min(maxPage, maxFilterScan-scanned))
		if err != nil || len(evs) == 0 {
			return out, after, err
		}
		scanned += len(evs)
		for _, e := range evs {
			after = e.Seq
			if f.Match(e) {
				if out = append(out, e); len(out) == limit {
					break
				}
			}
		}
	}
	return out, after, nil
}

// readBeforeFiltered is Stream.ReadBefore keeping only f's matches: up
// to limit of them, ascending, and the lowest seq it looked at (0: it
// reached the oldest event), the next older page's before.
func readBeforeFiltered(ctx context.Context, st *stream.Stream, before uint64, limit int, f *filter.Filter) ([]*event.Event, uint64, error) {
	var out []*event.Event
	for scanned := 0; len(out) < limit && scanned < maxFilterScan; {
		evs, err := st.ReadBefore(ctx, before, min(maxPage, maxFilterScan-scanned))
		if err != nil || len(evs) == 0 {
			return out, 0, err
		}
		scanned += len(evs)
		for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
			before = evs[i].Seq
			if f.Match(evs[i]) {
				out = append(out, evs[i])
			}
		}
		if before <= 1 {
			break
		}
	}
	reverseEvents(out)
	return out, before, nil
}

func reverseEvents(evs []*event.Event) {
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
}
