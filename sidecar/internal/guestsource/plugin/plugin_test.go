package plugin

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// watchFunc lets a test stand in for the plugin host's watch.
type watchFunc func(ctx context.Context, name string, config json.RawMessage, report func([]sdk.Guest)) error

func (f watchFunc) WatchGuests(ctx context.Context, name string, config json.RawMessage, report func([]sdk.Guest)) error {
	return f(ctx, name, config, report)
}

// Each set the plugin reports reaches the guest service converted: the
// source's labels under the plugin's, pids lowest first, nameless and
// repeated guests dropped.
func TestRunConvertsReportedSets(t *testing.T) {
	t.Parallel()
	var gotKind, gotConfig string
	src := Source{Kind: "vms", Config: json.RawMessage(`{"zone":"a"}`), Labels: map[string]string{"tier": "vm", "zone": "source"},
		Host: watchFunc(func(_ context.Context, name string, cfg json.RawMessage, report func([]sdk.Guest)) error {
			gotKind, gotConfig = name, string(cfg)
			report([]sdk.Guest{
				{Name: "a", Labels: map[string]string{"zone": "plugin"}, PIDs: []int{30, 10, 20}, Path: "/p/a", Cgroup: "/c/a"},
				{Name: ""},
				{Name: "a", Path: "/dup"},
				{Name: "b"},
			})
			report(nil)
			return nil
		})}
	var sets [][]guest.Guest
	if err := src.Run(t.Context(), func(gs []guest.Guest) { sets = append(sets, gs) }); err != nil {
		t.Fatal(err)
	}
	if gotKind != "vms" || gotConfig != `{"zone":"a"}` {
		t.Fatalf("watched %q with %s", gotKind, gotConfig)
	}
	want := [][]guest.Guest{
		{
			{Name: "a", Labels: map[string]string{"tier": "vm", "zone": "plugin"}, PIDs: []int{10, 20, 30}, Path: "/p/a", Cgroup: "/c/a"},
			{Name: "b", Labels: map[string]string{"tier": "vm", "zone": "source"}},
		},
		{},
	}
	if !reflect.DeepEqual(sets, want) {
		t.Fatalf("sets\n%+v\nwant\n%+v", sets, want)
	}
}
