package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
)

// runFib is the pexservice scenario: /fib/next at concurrency C. Every
// acknowledged next must have its own position.
func runFib(ctx context.Context, e *env) error {
	conc := orInt(e.o.Concurrency, 10)
	e.rep.OpsUnit = "requests"
	e.param("concurrency", conc)
	e.param("duration", e.o.Duration.String())
	before, err := e.api.Fib(ctx, "current")
	if err != nil {
		return err
	}
	positions := make([][]uint64, conc)
	l := &reqLoop{e: e, h: e.hist("request"), conc: conc,
		build: func(int) []byte { return e.request("POST", "/fib/next") },
		check: func(w int, status int, body []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("%w: /fib/next: %d %.120s", ErrStatus, status, body)
			}
			pos, ok := uintField(body, keyPosition)
			if !ok {
				return fmt.Errorf("%w: /fib/next answer %.120q", ErrProtocol, body)
			}
			positions[w] = append(positions[w], pos)
			return nil
		}}
	if err := l.run(ctx); err != nil {
		return err
	}
	after, err := e.api.Fib(ctx, "current")
	if err != nil {
		return err
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
	e.metric("position_before", float64(before.Position))
	e.metric("position_after", float64(after.Position))
	e.after(func(r *Report) {
		r.check("next/s", "≥ 25,000", group(r.Rate), r.Rate >= 25000)
		r.check("positions unique", "0 duplicates", fmt.Sprint(dups), dups == 0)
		r.check("every next counted", fmt.Sprintf("+%d", acked), fmt.Sprintf("+%d", after.Position-before.Position),
			after.Position-before.Position == acked)
	})
	return nil
}
