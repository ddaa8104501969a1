package builtin_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sidestream/sidestream/plugins/builtin"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	want := []string{"fibonacci", "log", "magic", "procstat", "time"}
	if got := builtin.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	all := builtin.Plugins()
	if len(all) != len(want) {
		t.Fatalf("Plugins() has %d entries, want %d", len(all), len(want))
	}
	for _, name := range want {
		p, ok := builtin.Get(name)
		if !ok {
			t.Fatalf("Get(%q) not found", name)
		}
		// The host routes by the name a plugin describes itself with.
		if d := p.Describe(); d.Name != name {
			t.Errorf("Get(%q).Describe().Name = %q", name, d.Name)
		}
		if d := all[name].Describe(); d.Name != name {
			t.Errorf("Plugins()[%q].Describe().Name = %q", name, d.Name)
		}
	}
}

func TestUnknown(t *testing.T) {
	t.Parallel()
	if _, ok := builtin.Get("nope"); ok {
		t.Error("Get(nope) found a plugin")
	}
	if err := builtin.ServeBuiltin("nope"); !errors.Is(err, builtin.ErrUnknownPlugin) {
		t.Errorf("ServeBuiltin(nope) = %v, want ErrUnknownPlugin", err)
	}
}
