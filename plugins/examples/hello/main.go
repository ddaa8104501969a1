// Command hello is the smallest sidestream plugin: kind "hello", one event a second.
package main

import (
	"context"
	"encoding/json"
	"github.com/sidestream/sidestream/plugins/sdk"
	"time"
)

type hello struct{}

func (hello) Describe() sdk.Description {
	return sdk.Description{Name: "hello", Version: "1.0.0", EventTypes: []string{"hello"}, ConfigSchema: json.RawMessage(`{"type":"object"}`)}
}
func (hello) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) { return c, nil }
func (hello) Run(ctx context.Context, _ sdk.Instance, out sdk.Output) error {
	for tick := time.NewTicker(time.Second); ; <-tick.C {
		ev := sdk.Event{Type: "hello", Data: json.RawMessage(`{"msg":"hello, world"}`)}
		if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{ev}}); err != nil {
			return err // ctx is done: the host stopped this instance
		}
	}
}
func main() { sdk.Serve(hello{}) }
