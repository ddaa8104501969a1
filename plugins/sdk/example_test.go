package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// ticker emits one "tick" event per interval and remembers how many it sent
// in its checkpoint, so a restarted instance continues where it stopped.
type ticker struct{}

func (ticker) Describe() sdk.Description {
	return sdk.Description{
		Name:    "ticker",
		Version: "1.0.0",
		ConfigSchema: json.RawMessage(`{
			"type": "object",
			"properties": {"interval_ms": {"type": "integer", "minimum": 1}},
			"additionalProperties": false
		}`),
		EventTypes: []string{"tick"},
	}
}

func (ticker) Validate(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	var c struct {
		IntervalMS int `json:"interval_ms"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, sdk.Invalid("", "%v", err)
	}
	if c.IntervalMS == 0 {
		c.IntervalMS = 1000 // normalize: the default becomes explicit
	}
	return json.Marshal(c)
}

func (ticker) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	var c struct {
		IntervalMS int `json:"interval_ms"`
	}
	if err := json.Unmarshal(inst.Config, &c); err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(inst.Checkpoint))
	t := time.NewTicker(time.Duration(c.IntervalMS) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n++
		b := sdk.Batch{
			Events:     []sdk.Event{{Type: "tick", Data: json.RawMessage(strconv.Itoa(n))}},
			Checkpoint: []byte(strconv.Itoa(n)),
		}
		if err := out.Emit(ctx, b); err != nil {
			return err
		}
	}
}

// A plugin's whole main: implement sdk.Plugin and hand it to sdk.Serve.
// The host starts the binary, speaks the handshake and supervises it.
func ExampleServe() {
	// func main() {
	sdk.Logger().Info("ticker plugin starting")
	if false { // Serve blocks for the life of the process.
		sdk.Serve(ticker{})
	}
	// }
}

// Plugin code logs through sdk.Logger; the host re-emits every line under
// the plugin's name with its level and attributes.
func ExampleLogger() {
	log := sdk.Logger()
	log.Warn("upstream slow", "instance", "e-42", "latency_ms", 1200)
}

// hosts is a guest source: it reports the guests it finds (here a fixed
// pair), the whole set each time it may have changed.
type hosts struct{}

func (hosts) DescribeGuestSource() sdk.GuestSourceDescription {
	return sdk.GuestSourceDescription{
		Name: "hosts", Version: "1.0.0",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"zone":{"type":"string"}}}`),
	}
}

func (hosts) ValidateGuestSource(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	return config, nil
}

func (hosts) WatchGuests(ctx context.Context, config json.RawMessage, report func([]sdk.Guest) error) error {
	var c struct{ Zone string }
	if err := json.Unmarshal(config, &c); err != nil {
		return err
	}
	set := []sdk.Guest{
		{Name: "vm-1", Labels: map[string]string{"zone": c.Zone}, PIDs: []int{4242}},
		{Name: "vm-2", Labels: map[string]string{"zone": c.Zone}, PIDs: []int{4343}},
	}
	if err := report(set); err != nil {
		return err
	}
	<-ctx.Done() // a real source watches its API here and reports again
	return nil
}

// A guest-source plugin's whole main: the host starts it like an emitter
// plugin, and a `type: plugin` guest source in the config runs it.
func ExampleServeGuestSource() {
	// func main() {
	if false { // ServeGuestSource blocks for the life of the process.
		sdk.ServeGuestSource(hosts{})
	}
	// }
	fmt.Println(hosts{}.DescribeGuestSource().Name)
	// Output: hosts
}
