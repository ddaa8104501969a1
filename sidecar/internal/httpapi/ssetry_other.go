//go:build !linux

package httpapi

import streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"

// tryWriter is nil off Linux: every SSE stream keeps a writer goroutine
// of its own.
func (w *rawChunked) tryWriter() streamhttp.TryWriter { return nil }
