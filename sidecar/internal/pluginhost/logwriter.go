package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// maxLogLine bounds a buffered partial line; longer lines are emitted in
// pieces rather than growing without bound.
const maxLogLine = 64 << 10

// logWriter receives a plugin's stderr and re-emits every line through
// the host's logger with plugin=<name>. JSON lines from the SDK's slog
// handler (level, msg) or from hclog (@level, @message) keep their level,
// message and attributes; anything else is logged as text at info.
type logWriter struct {
	log  *slog.Logger
	name string
	mu   sync.Mutex
	buf  []byte
}

func newLogWriter(log *slog.Logger, name string) *logWriter {
	return &logWriter{log: log, name: name}
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLogLine {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a burst's buffer go
	}
	return len(b), nil
}

// flush emits a last line that had no newline.
func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emit(w.buf)
	w.buf = nil
}

func (w *logWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r \t")
	if len(line) == 0 {
		return
	}
	if line[0] == '{' {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			w.emitJSON(m)
			return
		}
	}
	w.log.Info(string(line), "plugin", w.name)
}

func (w *logWriter) emitJSON(m map[string]any) {
	level := parseLevel(first(m, "level", "@level"))
	msg := first(m, "msg", "@message")
	for _, k := range []string{"time", "level", "msg", "@timestamp", "@level", "@message"} {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys)+2)
	args = append(args, "plugin", w.name)
	for _, k := range keys {
		name := strings.TrimPrefix(k, "@")
		if name == "plugin" {
			name = "plugin_attr" // never shadow who said it
		}
		args = append(args, name, m[k])
	}
	w.log.Log(context.Background(), level, msg, args...)
}

func first(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s
		}
	}
	return ""
}

func parseLevel(s string) slog.Level {
	if strings.EqualFold(s, "trace") {
		return slog.LevelDebug - 4
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
