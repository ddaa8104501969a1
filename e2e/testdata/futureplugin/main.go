// Command futureplugin stands for a plugin built against an SDK of the
// next plugin protocol version: the tests check the host refuses it at
// the handshake with both versions named.
package main

import (
	"context"
	"encoding/json"

	"github.com/sidestream/sidestream/plugins/sdk"
)

type future struct{}

func (future) Describe() sdk.Description { return sdk.Description{Name: "future", Version: "9.0.0"} }

func (future) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) { return c, nil }

func (future) Run(ctx context.Context, _ sdk.Instance, _ sdk.Output) error {
	<-ctx.Done()
	return nil
}

func main() {
	sdk.Handshake.ProtocolVersion = sdk.APIVersion + 1
	sdk.Serve(future{})
}
