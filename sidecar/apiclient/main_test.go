package apiclient

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Hertz's client (used for WebSocket handshakes only) starts pool
	// cleaners that sleep 10s and exit once its pool is empty; they belong
	// to the library, not to a Follow.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/app/client.(*Client).cleaner"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol/http1.(*HostClient).connsCleaner"),
	)
}
