package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

// The hello plugin keeps the whole plugin contract, checked through the
// real SDK adapter in process.
func TestConformance(t *testing.T) {
	sdktest.Conformance(t, hello{}, sdktest.Suite{
		ValidConfigs: []json.RawMessage{json.RawMessage(`{}`)},
		NeedsEvents:  true,
	})
}

// docs/PLUGINS.md shows this plugin; its first Go block must be this
// file, byte for byte, so the walk-through's code always compiles.
func TestWalkThroughShowsThisFile(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/PLUGINS.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```go\n")
	block, _, closed := strings.Cut(rest, "```\n")
	if !ok || !closed {
		t.Fatal("docs/PLUGINS.md has no Go block")
	}
	if block != string(src) {
		t.Fatalf("the first Go block of docs/PLUGINS.md differs from plugins/examples/hello/main.go:\n%s", block)
	}
	if n := strings.Count(block, "\n"); n > 25 {
		t.Fatalf("the hello-world plugin has %d lines, the walk-through promises at most 25", n)
	}
}
