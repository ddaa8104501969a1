package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// vms is a guest source whose config.mode picks its behaviour: "two"
// reports two guests then one, "nil" returns nil at once, "fail" fails,
// "panic" panics.
type vms struct{}

func (vms) DescribeGuestSource() sdk.GuestSourceDescription {
	return sdk.GuestSourceDescription{
		Name: "vms", Version: "0.2.0", Description: "test guests",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"mode":{"enum":["two","nil","fail","panic"]}},"required":["mode"],"additionalProperties":false}`),
	}
}

func (vms) ValidateGuestSource(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	if strings.Contains(string(c), "panic") {
		return nil, sdk.Invalid("mode", "not here")
	}
	return c, nil
}

func (vms) WatchGuests(ctx context.Context, c json.RawMessage, report func([]sdk.Guest) error) error {
	var cfg struct{ Mode string }
	_ = json.Unmarshal(c, &cfg)
	switch cfg.Mode {
	case "nil":
		return nil
	case "fail":
		return errors.New("hypervisor unreachable")
	case "panic":
		panic("guest boom")
	}
	a := sdk.Guest{Name: "a", Labels: map[string]string{"tier": "vm"}, Path: "/run/a", PIDs: []int{42, 43}, Cgroup: "/machine/a"}
	if err := report([]sdk.Guest{a, {Name: "b"}}); err != nil {
		return err
	}
	if err := report([]sdk.Guest{a}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// both is an emitter kind that also reports guests, from one binary.
type both struct {
	counter
	vms
}

func TestGuestSourceRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		server pluginpb.EmitterServer
		roles  []string
		desc   string
	}{
		{"emitter only", sdk.NewServer(counter{}, nil), []string{sdk.RoleEmitter}, "counter"},
		{"guest source only", sdk.NewGuestSourceServer(vms{}, nil), []string{sdk.RoleGuestSource}, "vms"},
		{"both", sdk.NewServer(both{}, nil), []string{sdk.RoleEmitter, sdk.RoleGuestSource}, "counter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := dialServer(t, tc.server).Describe(ctxT(t), &pluginpb.DescribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.GetRoles(), tc.roles) || d.GetName() != tc.desc {
				t.Fatalf("roles %v name %q, want %v %q", d.GetRoles(), d.GetName(), tc.roles, tc.desc)
			}
			if slices.Contains(tc.roles, sdk.RoleGuestSource) && !strings.Contains(string(d.GetGuestSourceSchema()), "mode") {
				t.Fatalf("guest source schema %s", d.GetGuestSourceSchema())
			}
		})
	}
}

func TestWatchGuestsStreamsWholeSets(t *testing.T) {
	t.Parallel()
	c := dialServer(t, sdk.NewGuestSourceServer(vms{}, nil))
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	st, err := c.WatchGuests(ctx, &pluginpb.WatchGuestsRequest{Config: []byte(`{"mode":"two"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var sets [][]sdk.Guest
	for range 2 {
		pb, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, sdk.FromPBSnapshot(pb))
	}
	if len(sets[0]) != 2 || len(sets[1]) != 1 {
		t.Fatalf("sets %+v, want two guests then one", sets)
	}
	a := sets[1][0]
	if a.Name != "a" || a.Labels["tier"] != "vm" || a.Path != "/run/a" || !slices.Equal(a.PIDs, []int{42, 43}) || a.Cgroup != "/machine/a" {
		t.Fatalf("guest a arrived as %+v", a)
	}
}

// A watch that ends on its own, fails or panics is a failure the host
// sees (and retries), never a clean end that would look like "no guests".
func TestWatchGuestsFailures(t *testing.T) {
	t.Parallel()
	c := dialServer(t, sdk.NewGuestSourceServer(vms{}, nil))
	for mode, want := range map[string]codes.Code{"nil": codes.Aborted, "fail": codes.Aborted, "panic": codes.Internal} {
		st, err := c.WatchGuests(ctxT(t), &pluginpb.WatchGuestsRequest{Config: []byte(`{"mode":"` + mode + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Recv()
		if status.Code(err) != want {
			t.Errorf("mode %s: %v, want %v", mode, err, want)
		}
	}
}

func TestValidateGuestSource(t *testing.T) {
	t.Parallel()
	c := dialServer(t, sdk.NewGuestSourceServer(vms{}, nil))
	for _, tc := range []struct{ config, field string }{
		{`{"mode":"two"}`, ""},
		{`{"mode":"nope"}`, "mode"},
		{`{"mode":"panic"}`, "mode"},
		{`{"mode":"two","x":1}`, "x"},
	} {
		resp, err := c.ValidateGuestSource(ctxT(t), &pluginpb.ValidateRequest{Config: []byte(tc.config)})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if e := resp.GetErrors(); len(e) > 0 {
			got = e[0].GetField()
		}
		if got != tc.field {
			t.Errorf("%s: field errors %v, want %q", tc.config, resp.GetErrors(), tc.field)
		}
	}
}

// A guest-only plugin refuses the emitter calls, and an emitter-only one
// the guest calls, each with an error naming the plugin.
func TestRolesRefuseOtherCalls(t *testing.T) {
	t.Parallel()
	g := dialServer(t, sdk.NewGuestSourceServer(vms{}, nil))
	if _, err := g.Validate(ctxT(t), &pluginpb.ValidateRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Validate on a guest source: %v", err)
	}
	st, err := g.Run(ctxT(t), &pluginpb.RunRequest{InstanceId: "x"})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Run on a guest source: %v", err)
	}
	e := dial(t, counter{})
	if _, err := e.ValidateGuestSource(ctxT(t), &pluginpb.ValidateRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ValidateGuestSource on an emitter: %v", err)
	}
}
