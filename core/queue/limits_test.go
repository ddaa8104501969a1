package queue

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// zaqarName is the grammar Zaqar documents for queue names.
var zaqarName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func TestCheckNameFollowsZaqar(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"a", "jobs", "Jobs_2-x", strings.Repeat("z", 64), strings.Repeat("z", 65), "",
		"has space", "dot.ted", "slash/ed", "ünï", "tab\t", "nul\x00", "-", "_", "9",
	} {
		err := CheckName(name)
		if want := zaqarName.MatchString(name); (err == nil) != want {
			t.Errorf("CheckName(%q) = %v, want valid=%v", name, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckName(%q) = %v, not ErrInvalid", name, err)
		}
	}
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"jobs", "", "a b", strings.Repeat("q", 64), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := CheckName(name) == nil, zaqarName.MatchString(name); got != want {
			t.Fatalf("CheckName(%q) valid=%v, the grammar says %v", name, got, want)
		}
	})
}

func BenchmarkCheckName(b *testing.B) {
	for _, bc := range []struct {
		name string
		fn   func(string) bool
	}{
		{"loop", func(s string) bool { return CheckName(s) == nil }},
		{"regexp", zaqarName.MatchString},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if !bc.fn("bench-queue_01") {
					b.Fatal("refused")
				}
			}
		})
	}
}
