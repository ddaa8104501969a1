package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"sync"

	"github.com/cloudwego/hertz/pkg/common/hlog"
)

var routeHertzLogOnce sync.Once

// routeHertzLog sends Hertz's own log lines (global hlog, plain text) into
// the sidecar's slog so every line the process writes is structured.
// Hertz's logger is process-global: the first server's logger wins.
func routeHertzLog(log *slog.Logger) {
	routeHertzLogOnce.Do(func() {
		hlog.SetOutput(&hertzLogWriter{log: log.With("source", "hertz")})
	})
}

// hertzPrefix matches "2026/11/23 18:13:30.851783 engine.go:416: [Info] ".
var hertzPrefix = regexp.MustCompile(`^\S+ \S+ \S+: \[(\w+)\] `)

type hertzLogWriter struct{ log *slog.Logger }

func (w *hertzLogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level, msg := slog.LevelInfo, line
		if m := hertzPrefix.FindSubmatch(line); m != nil {
			msg = line[len(m[0]):]
			switch string(m[1]) {
			case "Trace", "Debug":
				level = slog.LevelDebug
			case "Warn", "Notice":
				level = slog.LevelWarn
			case "Error", "Fatal":
				level = slog.LevelError
			}
		}
		w.log.Log(context.Background(), level, string(msg))
	}
	return len(p), nil
}
