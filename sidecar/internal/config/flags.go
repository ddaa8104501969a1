package config

import (
	"strings"

	"github.com/spf13/pflag"
)

// FileFlag names the flag of the YAML file (also SIDESTREAM_CONFIG).
const FileFlag = "config"

// RegisterFlags adds the flag of every key that declares one, plus
// --config, to f. Flags keep the text the user typed: Load parses it, so
// a bad value is reported with its key like any other source.
func RegisterFlags(f *pflag.FlagSet) {
	def := Default()
	f.String(FileFlag, "", "YAML config file (also SIDESTREAM_CONFIG)")
	for _, k := range Keys {
		if k.Flag == "" {
			continue
		}
		help := k.help()
		if k.IsZero(def) && k.Unset != "" {
			help += " (default: " + k.Unset + ")"
		}
		v := &flagValue{kind: k.Kind()}
		fl := f.VarPF(v, k.Flag, "", help)
		if v.kind == "bool" {
			fl.NoOptDefVal = "true"
		}
		if !k.IsZero(def) {
			fl.DefValue = k.Format(def) // shown by --help; Load applies Default() itself
		}
	}
}

// FlagSettings returns the keys set by the flags the user gave, in the
// form Sources.Flags takes.
func FlagSettings(f *pflag.FlagSet) []Setting {
	var out []Setting
	for _, k := range Keys {
		fl := f.Lookup(k.Flag)
		if k.Flag == "" || fl == nil || !fl.Changed {
			continue
		}
		v := fl.Value.(*flagValue)
		out = append(out, Setting{Key: k.Name, Value: strings.Join(v.vals, k.Sep), Source: "--" + k.Flag})
	}
	return out
}

// flagValue holds a flag's text unparsed; a list flag collects every
// occurrence (repeatable), the others keep the last.
type flagValue struct {
	kind string
	vals []string
}

func (v *flagValue) String() string { return strings.Join(v.vals, ",") }

func (v *flagValue) Set(s string) error {
	if v.kind == "list" {
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

func (v *flagValue) Type() string {
	if v.kind == "list" {
		return "strings"
	}
	return v.kind
}
