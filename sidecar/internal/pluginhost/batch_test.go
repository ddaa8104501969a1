package pluginhost

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/core/emitter"
)

// A batch of "add" commands on checkpoint 10 runs in order, each on the
// checkpoint the previous successful one left; the bad one fails alone.
// A plugin from an older SDK (CommandBatch Unimplemented) gives the same
// answers through one Command each, and the host asks it only once.
func TestCommandBatchAndOlderSDKFallback(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"counter", "counter-oldsdk"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			refusals := filepath.Join(t.TempDir(), "refusals")
			h := newHost(t, fastConfig(builtin("counter", mode, envBatchLog+"="+refusals)), nil)
			ctx := ctxT(t)
			cmds := []emitter.Cmd{{Name: "add", Args: json.RawMessage(`1`)}, {Name: "add", Args: json.RawMessage(`2`)},
				{Name: "add", Args: json.RawMessage(`"x"`)}, {Name: "sub"}, {Name: "add", Args: json.RawMessage(`3`)}}
			for round := range 2 {
				outs, err := h.CommandBatch(ctx, "counter", "e1", json.RawMessage(`{"batch":1}`), []byte("10"), cmds)
				if err != nil {
					t.Fatal(err)
				}
				var ce *emitter.CommandError
				if len(outs) != len(cmds) || string(outs[0].Result) != "11" || string(outs[1].Result) != "13" ||
					!errors.As(outs[2].Err, &ce) || ce.Code != "bad_args" || !errors.Is(outs[3].Err, emitter.ErrUnknownCommand) ||
					string(outs[4].Result) != "16" || string(outs[4].Batch.Checkpoint) != "16" || len(outs[4].Batch.Events) != 1 {
					t.Fatalf("round %d: outcomes %+v", round, outs)
				}
			}
			b, err := os.ReadFile(refusals)
			n := strings.Count(string(b), "\n")
			switch {
			case mode == "counter" && !errors.Is(err, os.ErrNotExist):
				t.Fatalf("current SDK refused CommandBatch: %q %v", b, err)
			case mode == "counter-oldsdk" && n != 1:
				t.Fatalf("older SDK asked for CommandBatch %d times, want once (remembered)", n)
			}
		})
	}
}
