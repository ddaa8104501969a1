package bench

import (
	"context"
	"fmt"
)

// runQueue will drive producers and consumers over the queue WebSocket
// once the server has queues.
func runQueue(_ context.Context, _ *env) error {
	return fmt.Errorf("%w: queue: the server has no queue API yet", ErrNotDone)
}
