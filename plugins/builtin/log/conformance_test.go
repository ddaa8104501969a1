package logplugin

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestConformanceSynthetic(t *testing.T) {
	sdktest.Conformance(t, NewWithRoots(nil), sdktest.Suite{
		ValidConfigs: []json.RawMessage{
			json.RawMessage(`{}`),
			json.RawMessage(`null`),
			json.RawMessage(`{"source":"synthetic","rate":10,"levels":["INFO","WARN","ERROR","DEBUG"],"guest":"vm-17"}`),
			json.RawMessage(`{"rate":0.5,"levels":["ERROR"]}`),
		},
		InvalidConfigs: []json.RawMessage{
			json.RawMessage(`{"rate":-1}`),
			json.RawMessage(`{"rate":100001}`),
			json.RawMessage(`{"levels":["TRACE"]}`),
			json.RawMessage(`{"source":"file","path":"/var/log/x.log"}`), // no roots
		},
		NeedsEvents: true,
		RunConfig:   json.RawMessage(`{"rate":1000}`),
		Checkpoints: [][]byte{[]byte(`{"line":41}`)},
	})
}

func TestConformanceFile(t *testing.T) {
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 100))
	// A live guest keeps writing, so every resumed Run has new lines.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 101; i < 20000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					_, err = f.WriteString(numbered(i, i)[0] + "\n")
					err = errors.Join(err, f.Close())
				}
				if err != nil {
					t.Errorf("writer: %v", err) // t.Fatal is for the test goroutine only
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	p := NewWithOptions(Options{Roots: []string{s.root}, PollInterval: 5 * time.Millisecond})
	sdktest.Conformance(t, p, sdktest.Suite{
		ValidConfigs: []json.RawMessage{s.config},
		InvalidConfigs: []json.RawMessage{
			fileConfig("relative/console.log"),
			fileConfig(s.root + "/../etc/passwd"),
			fileConfig("/etc/passwd"),
		},
		NeedsEvents: true,
	})
}
