// Command sidestream is the sidecar: `sidestream serve` runs it, the other
// subcommands are its clients and tools. `sidestream internal-plugin NAME`
// is how the sidecar re-executes itself to serve a built-in plugin; it is
// dispatched before any other setup.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sidestream/sidestream/plugins/builtin"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "internal-plugin" {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: sidestream internal-plugin NAME")
			os.Exit(2)
		}
		if err := builtin.ServeBuiltin(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "sidestream internal-plugin:", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "sidestream:", err)
		os.Exit(1)
	}
}

// exitError ends the process with code after its message was printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
