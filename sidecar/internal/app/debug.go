package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startDebug serves Go's pprof handlers on the loopback debug address
// (validated by config), apart from the API so profiles never share its
// port, auth or middleware.
func (s *system) startDebug(context.Context) error {
	if s.cfg.DebugListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.DebugListen)
	if err != nil {
		return fmt.Errorf("debug listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("debug server", "err", err)
		}
	}()
	s.log.Info("pprof serving", "addr", ln.Addr().String())
	s.push("debug", func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		<-done
		return err
	})
	return nil
}
