package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// Owner is what the RPC server serves: this node's emitters and streams.
type Owner interface {
	Create(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Delete(ctx context.Context, id string) error
	Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error)
	// LocalStream is the stream of an emitter this node runs (never a mirror).
	LocalStream(id string) (*stream.Stream, error)
}

// maxRPCConcurrency bounds the requests one node serves at once.
const maxRPCConcurrency = 256

// RPCServer answers other nodes' requests for the emitters this node owns.
type RPCServer struct {
	owner   Owner
	log     *slog.Logger
	timeout time.Duration
	sub     *nats.Subscription
	sem     chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// ServeRPC subscribes node's RPC subject.
func ServeRPC(nc *nats.Conn, node string, owner Owner, log *slog.Logger) (*RPCServer, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &RPCServer{owner: owner, log: log, timeout: 30 * time.Second, sem: make(chan struct{}, maxRPCConcurrency), ctx: ctx, cancel: cancel}
	sub, err := nc.Subscribe(subjectRPC+token(node), s.onRequest)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("serve rpc: %w", err)
	}
	s.sub = sub
	// Serving once it returns: the server has the subscription, so a
	// request sent next (from any connection) finds a responder.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		cancel()
		return nil, fmt.Errorf("serve rpc: %w", err)
	}
	return s, nil
}

func (s *RPCServer) onRequest(m *nats.Msg) {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	s.wg.Add(1)
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		var req rpcRequest
		var rep rpcReply
		if err := json.Unmarshal(m.Data, &req); err != nil {
			rep.Error = &rpcError{Code: "internal", Message: "bad request: " + err.Error()}
		} else {
			ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
			rep = s.handle(ctx, req)
			cancel()
		}
		b, _ := json.Marshal(rep)
		if err := m.Respond(b); err != nil {
			s.log.Debug("rpc reply not sent", "op", req.Op, "err", err)
		}
	}()
}

func (s *RPCServer) handle(ctx context.Context, req rpcRequest) (rep rpcReply) {
	var err error
	switch req.Op {
	case "create":
		if req.Create == nil {
			return rpcReply{Error: &rpcError{Code: "internal", Message: "create without a request"}}
		}
		var spec emitter.Spec
		spec, err = s.owner.Create(ctx, *req.Create)
		rep.Spec = &spec
	case "delete":
		err = s.owner.Delete(ctx, req.ID)
	case "command":
		rep.Result, err = s.owner.Command(ctx, req.ID, req.Name, req.Args)
	case "head", "read_after", "read_before":
		rep, err = s.read(ctx, req)
	default:
		err = fmt.Errorf("unknown rpc op %q", req.Op)
	}
	if err != nil {
		return rpcReply{Error: encodeError(err)}
	}
	return rep
}

func (s *RPCServer) read(ctx context.Context, req rpcRequest) (rpcReply, error) {
	st, err := s.owner.LocalStream(req.ID)
	if err != nil {
		return rpcReply{}, err
	}
	limit := min(max(req.Limit, 1), stream.MaxBatch)
	var evs []*event.Event
	switch req.Op {
	case "head":
		return rpcReply{Head: st.Head()}, nil
	case "read_after":
		evs, err = st.ReadAfter(ctx, req.After, limit)
	default:
		evs, err = st.ReadBefore(ctx, req.Before, limit)
	}
	if err != nil {
		return rpcReply{}, err
	}
	return rpcReply{Events: evs, Head: st.Head()}, nil
}

// Close stops serving and waits for requests in flight.
func (s *RPCServer) Close(ctx context.Context) error {
	_ = s.sub.Drain()
	s.cancel()
	return waitAll(ctx, &s.wg, "rpc")
}

// Peers calls other nodes (cluster.Peers).
type Peers struct {
	nc    *nats.Conn
	nodes *Nodes
}

var _ cluster.Peers = (*Peers)(nil)

// NewPeers returns the client side of the RPC.
func NewPeers(nc *nats.Conn, nodes *Nodes) *Peers {
	return &Peers{nc: nc, nodes: nodes}
}

func (p *Peers) call(ctx context.Context, node string, req rpcRequest) (rpcReply, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	b, err := json.Marshal(req)
	if err != nil {
		return rpcReply{}, err
	}
	msg, err := p.nc.RequestWithContext(ctx, subjectRPC+token(node), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return rpcReply{}, fmt.Errorf("node %s: %w", node, cluster.ErrNodeDown)
	}
	if err != nil {
		return rpcReply{}, fmt.Errorf("node %s: %s: %w", node, req.Op, err)
	}
	var rep rpcReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return rpcReply{}, fmt.Errorf("node %s: bad reply: %w", node, err)
	}
	if rep.Error != nil {
		return rep, rep.Error.decode(node)
	}
	return rep, nil
}

// Known reports whether node is a member of the cluster.
func (p *Peers) Known(node string) bool { return p.nodes.Known(node) }

// Create creates an emitter on node.
func (p *Peers) Create(ctx context.Context, node string, req emitter.CreateRequest) (emitter.Spec, error) {
	req.Node = node
	rep, err := p.call(ctx, node, rpcRequest{Op: "create", Create: &req})
	if err != nil || rep.Spec == nil {
		return emitter.Spec{}, err
	}
	return *rep.Spec, nil
}

// Delete deletes an emitter on node.
func (p *Peers) Delete(ctx context.Context, node, id string) error {
	_, err := p.call(ctx, node, rpcRequest{Op: "delete", ID: id})
	return err
}

// Command runs a command on node.
func (p *Peers) Command(ctx context.Context, node, id, name string, args json.RawMessage) (json.RawMessage, error) {
	rep, err := p.call(ctx, node, rpcRequest{Op: "command", ID: id, Name: name, Args: args})
	return rep.Result, err
}

// Head returns the head of a stream node owns.
func (p *Peers) Head(ctx context.Context, node, id string) (uint64, error) {
	rep, err := p.call(ctx, node, rpcRequest{Op: "head", ID: id})
	return rep.Head, err
}

// ReadAfter reads a stream node owns.
func (p *Peers) ReadAfter(ctx context.Context, node, id string, after uint64, limit int) ([]*event.Event, error) {
	rep, err := p.call(ctx, node, rpcRequest{Op: "read_after", ID: id, After: after, Limit: limit})
	return rep.Events, err
}

// ReadBefore reads a stream node owns, newest first cut, ascending.
func (p *Peers) ReadBefore(ctx context.Context, node, id string, before uint64, limit int) ([]*event.Event, error) {
	rep, err := p.call(ctx, node, rpcRequest{Op: "read_before", ID: id, Before: before, Limit: limit})
	return rep.Events, err
}
