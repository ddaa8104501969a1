package guest

import (
	"context"
	"strconv"
	"testing"

	"github.com/sidestream/sidestream/core/emitter"
)

// noEmitters attaches nothing: the benchmark measures discovery (the diff
// of a source's report against what is known), not plugins.
type noEmitters struct{}

func (noEmitters) Attach(context.Context, emitter.CreateRequest) (emitter.Spec, error) {
	return emitter.Spec{}, nil
}
func (noEmitters) Stop(context.Context, string) error { return nil }
func (noEmitters) Get(context.Context, string) (emitter.Spec, error) {
	return emitter.Spec{}, emitter.ErrNotFound
}
func (noEmitters) List(context.Context, emitter.Filter, string, int) ([]emitter.Spec, string) {
	return nil, ""
}

// BenchmarkReport1000 is the Service's cost of one report of 1,000 guests
// it already knows, one of which changed (the steady state of a rescan).
func BenchmarkReport1000(b *testing.B) {
	s := &Service{em: noEmitters{}, opts: Options{MaxGone: 1000}, log: nil, ctx: context.Background()}
	st := newState(s)
	st.sources["src"] = &runningSource{gen: 1}
	gs := make([]Guest, 1000)
	for i := range gs {
		gs[i] = Guest{Name: "vm-" + strconv.Itoa(i), Source: "src", Path: "/g/" + strconv.Itoa(i)}
	}
	st.report(update{source: "src", gen: 1, guests: gs})
	st.pending = nil
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		gs[0].Path = "/g/changed" + strconv.Itoa(i%2)
		st.report(update{source: "src", gen: 1, guests: gs})
		_ = st.views()
	}
}
