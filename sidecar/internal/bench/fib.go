package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/sidestream/sidestream/sidecar/api"
)

// runFib is the pexservice scenario: the next command at concurrency C.
// It runs on a Fibonacci emitter of its own, deleted at the end, so a
// benchmark never moves the node's shared /fib counter that users see.
// Every acknowledged next must have its own position.
func runFib(ctx context.Context, e *env) error {
	conc := orInt(e.o.Concurrency, 10)
	e.rep.OpsUnit = "requests"
	e.param("concurrency", conc)
	e.param("duration", e.o.Duration.String())
	id, err := ownEmitter(ctx, e, "fibonacci")
	if err != nil {
		return err
	}
	defer e.deleteEmitter(id)
	next := "/api/v1/emitters/" + url.PathEscape(id) + "/commands/next"
	positions := make([][]uint64, conc)
	l := &reqLoop{e: e, h: e.hist("request"), conc: conc,
		build: func(int) []byte { return e.request("POST", next) },
		check: func(w int, status int, body []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("%w: %s: %d %.120s", ErrStatus, next, status, body)
			}
			pos, ok := uintField(body, keyPosition)
			if !ok {
				return fmt.Errorf("%w: %s answer %.120q", ErrProtocol, next, body)
			}
			positions[w] = append(positions[w], pos)
			return nil
		}}
	if err := l.run(ctx); err != nil {
		return err
	}
	raw, err := e.api.Command(ctx, id, "current", nil)
	if err != nil {
		return err
	}
	var after api.FibState
	if err := json.Unmarshal(raw, &after); err != nil {
		return fmt.Errorf("%w: current answer %.120q", ErrProtocol, raw)
	}
	var all []uint64
	for _, p := range positions {
		all = append(all, p...)
	}
	slices.Sort(all)
	dups := len(all) - len(slices.Compact(slices.Clone(all)))
	e.dups.Add(int64(dups))
	acked := uint64(len(all))
	e.metric("acknowledged", float64(acked))
	e.metric("position_after", float64(after.Position))
	e.after(func(r *Report) {
		r.check("next/s", "≥ 25,000", group(r.Rate), r.Rate >= 25000)
		r.check("positions unique", "0 duplicates", fmt.Sprint(dups), dups == 0)
		r.check("every next counted", fmt.Sprintf("%d", acked), fmt.Sprintf("%d", after.Position), after.Position == acked)
	})
	return nil
}

// ownEmitter creates an emitter of kind for this run alone (labelled so
// an operator sees what it is), recorded in the report's params. Unlike
// createEmitter it keeps the default retention: a Fibonacci next is
// measured durable, as /fib's.
func ownEmitter(ctx context.Context, e *env, kind string) (string, error) {
	em, err := e.api.CreateEmitter(ctx, api.CreateEmitter{Kind: kind, Labels: map[string]string{"created-by": "sidestream-bench"}})
	if err != nil {
		return "", fmt.Errorf("create the benchmark's %s emitter: %w", kind, err)
	}
	e.param("emitter", em.ID)
	return em.ID, nil
}
