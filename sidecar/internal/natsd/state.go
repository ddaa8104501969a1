package natsd

import (
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
)

// Route is one route of the server.
type Route struct {
	Remote string
	Addr   string
}

// State is what the server knows about the cluster.
type State struct {
	Server     string
	Routes     []Route
	MetaLeader string
	Peers      int
	Streams    int
	Consumers  int
	Bytes      uint64
}

// State reports routes and JetStream's view of the cluster.
func (s *Server) State() State {
	st := State{Server: s.ns.Name()}
	if rz, err := s.ns.Routez(nil); err == nil {
		seen := map[string]bool{}
		for _, r := range rz.Routes {
			// Pooled routes repeat a remote: one entry per node.
			if seen[r.RemoteName] {
				continue
			}
			seen[r.RemoteName] = true
			st.Routes = append(st.Routes, Route{Remote: r.RemoteName, Addr: fmt.Sprintf("%s:%d", r.IP, r.Port)})
		}
	}
	if jz, err := s.ns.Jsz(&server.JSzOptions{}); err == nil {
		st.Streams, st.Consumers, st.Bytes = jz.Streams, jz.Consumers, jz.Store
		if jz.Meta != nil {
			st.MetaLeader, st.Peers = jz.Meta.Leader, jz.Meta.Size
		}
	}
	return st
}

// slogLogger forwards the server's log lines to slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(f string, v ...any) { l.log.Info(fmt.Sprintf(f, v...)) }
func (l slogLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l slogLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l slogLogger) Tracef(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
