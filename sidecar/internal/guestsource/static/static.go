// Package static is the guest source of a fixed list from the config:
// its guests are present from the start and never go (a reload that
// drops one from the list makes it gone).
package static

import (
	"context"

	"github.com/sidestream/sidestream/core/guest"
)

// Source reports its guests once and waits.
type Source struct {
	Guests []guest.Guest
}

// Run implements guest.Source.
func (s Source) Run(ctx context.Context, report func([]guest.Guest)) error {
	report(s.Guests)
	<-ctx.Done()
	return nil
}
