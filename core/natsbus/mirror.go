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
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

var _ cluster.Mirrors = (*Mirrors)(nil)

// Mirrors serves, on this node, the streams of emitters other nodes run:
// one NATS subscription per stream however many local clients watch it,
// holes filled from the owner, history read from the owner, and watchers
// told when the owner is lost (they stay connected and resume when it is
// back, with nothing lost or repeated).
type Mirrors struct {
	nc    *nats.Conn
	hub   *stream.Hub
	peers *Peers
	nodes *Nodes
	log   *slog.Logger

	mu      sync.Mutex
	mirrors map[string]*mirror
	unwatch func()
	stop    context.CancelFunc // called by Close: ends the position check
	wg      sync.WaitGroup
}

// MirrorsOptions tune Mirrors.
type MirrorsOptions struct {
	// PositionCheck is how often every mirror with subscribers is
	// compared with its owner's head (default 5s): batches are published
	// at most once, and one lost (a route between servers being
	// re-established, or the owner publishing before this node's new
	// subscription reached its server) would otherwise show only with
	// the owner's next batch, however late that comes.
	PositionCheck time.Duration
}

// NewMirrors returns the mirrors of this node, kept in hub.
func NewMirrors(nc *nats.Conn, hub *stream.Hub, peers *Peers, nodes *Nodes, o MirrorsOptions, log *slog.Logger) *Mirrors {
	if o.PositionCheck <= 0 {
		o.PositionCheck = 5 * time.Second
	}
	m := &Mirrors{nc: nc, hub: hub, peers: peers, nodes: nodes, log: log, mirrors: map[string]*mirror{}}
	m.unwatch = nodes.Watch(m.onNode)
	ctx, stop := context.WithCancel(context.Background())
	m.stop = stop
	m.wg.Add(1)
	go m.checkPositions(ctx, o.PositionCheck)
	return m
}

// checkPositions syncs every mirror with subscribers with its owner every
// interval, until ctx ends (Close).
func (m *Mirrors) checkPositions(ctx context.Context, every time.Duration) {
	defer m.wg.Done()
	everyTick(ctx, every, m.checkPositionsOnce)
}

// checkPositionsOnce syncs every mirror with subscribers. A mirror whose
// owner is down is the owner's return to catch up; a check that fails is
// the next tick's to repeat.
func (m *Mirrors) checkPositionsOnce(ctx context.Context) {
	m.mu.Lock()
	mirrors := make([]*mirror, 0, len(m.mirrors))
	for _, mr := range m.mirrors {
		mirrors = append(mirrors, mr)
	}
	m.mu.Unlock()
	for _, mr := range mirrors {
		if ctx.Err() != nil {
			return
		}
		if mr.st.Offline() || mr.st.Subscribers() == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		mr.sync(cctx)
		cancel()
	}
}

// Open returns the local mirror of e's stream, opening it on first use.
func (m *Mirrors) Open(ctx context.Context, e cluster.Entry) (*stream.Stream, error) {
	m.mu.Lock()
	mr, ok := m.mirrors[e.Spec.ID]
	m.mu.Unlock()
	if ok {
		// A client may resume from a seq another node already served:
		// catch up with the owner first, or its resume point would be
		// beyond this mirror's head (and replayed).
		mr.sync(ctx)
		return mr.st, nil
	}
	// Its owner must be one the membership judges, or its loss would
	// never send watchers offline.
	m.nodes.Expect(e.Node)
	mr = &mirror{m: m, id: e.Spec.ID, node: e.Node, ready: make(chan struct{})}
	// Subscribed before the head is read, so no batch falls between.
	sub, err := m.nc.Subscribe(subjectEvents+token(e.Spec.ID), mr.onBatch)
	if err != nil {
		return nil, fmt.Errorf("mirror %s: %w", e.Spec.ID, err)
	}
	mr.sub = sub
	cfg := stream.Config{Persist: e.Spec.Retention.Persist, Kind: e.Spec.Kind}
	// OpenExternal owns mr from here: it releases it unless it keeps it.
	st, err := m.hub.OpenExternal(ctx, e.Spec.ID, cfg, mr)
	if err != nil {
		close(mr.ready)
		return nil, fmt.Errorf("mirror %s of node %s: %w", e.Spec.ID, e.Node, err)
	}
	mr.st = st
	close(mr.ready)
	m.mu.Lock()
	if mr.sub.IsValid() {
		m.mirrors[e.Spec.ID] = mr
	}
	m.mu.Unlock()
	if mr.headFailed {
		st.SetOffline(true, "node "+e.Node+" is unreachable")
	}
	return st, nil
}

// onNode reacts to an owner going down (watchers are told) or coming back
// or restarting (the mirror catches up from the owner's history).
func (m *Mirrors) onNode(n cluster.Node) {
	m.mu.Lock()
	var affected []*mirror
	for _, mr := range m.mirrors {
		if mr.node == n.Name {
			affected = append(affected, mr)
		}
	}
	m.mu.Unlock()
	for _, mr := range affected {
		if !n.Up {
			mr.st.SetOffline(true, "node "+n.Name+" is unreachable")
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			mr.catchUp()
		}()
	}
}

// Close drops every mirror's subscription.
func (m *Mirrors) Close(ctx context.Context) error {
	m.unwatch()
	m.stop()
	m.mu.Lock()
	for _, mr := range m.mirrors {
		_ = mr.sub.Unsubscribe()
	}
	m.mu.Unlock()
	return waitAll(ctx, &m.wg, "mirrors")
}

// mirror is one remote stream; it is the stream's stream.ExternalSource.
type mirror struct {
	m     *Mirrors
	id    string
	node  string
	sub   *nats.Subscription
	ready chan struct{}
	st    *stream.Stream

	// deliver orders the subscription's batches with catch-ups.
	deliver sync.Mutex
	// headFailed is set when the owner did not answer at open.
	headFailed bool
}

// rpcTimeout bounds one fill or history read from the owner.
const rpcTimeout = 5 * time.Second

func (mr *mirror) onBatch(msg *nats.Msg) {
	<-mr.ready
	if mr.st == nil || !mr.sub.IsValid() {
		return
	}
	var evs []*event.Event
	if err := json.Unmarshal(msg.Data, &evs); err != nil {
		mr.m.log.Warn("unreadable event batch", "stream", mr.id, "node", mr.node, "err", err)
		return
	}
	mr.deliver.Lock()
	defer mr.deliver.Unlock()
	mr.deliverLocked(evs)
}

// deliverLocked delivers evs, filling any hole before them from the owner.
func (mr *mirror) deliverLocked(evs []*event.Event) {
	for range 64 { // bounded: each round fills up to stream.MaxBatch seqs
		from, to, ok := mr.st.Deliver(evs)
		if ok {
			return
		}
		if !mr.fill(from, to) {
			return
		}
	}
}

// fill reads the missing seqs from the owner and delivers them. A hole the
// owner no longer holds becomes a gap marker for watchers.
func (mr *mirror) fill(from, to uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	evs, err := mr.m.peers.ReadAfter(ctx, mr.node, mr.id, from-1, int(min(to-from+1, stream.MaxBatch)))
	if err != nil {
		mr.m.log.Warn("fill mirror from owner", "stream", mr.id, "node", mr.node, "from", from, "to", to, "err", err)
		return false
	}
	if len(evs) == 0 || evs[0].Seq > from {
		end := to
		if len(evs) > 0 {
			end = evs[0].Seq - 1
		}
		mr.st.DeliverGap(from, end)
	}
	_, _, _ = mr.st.Deliver(evs)
	return true
}

// catchUp delivers what the owner published while it was unreachable.
func (mr *mirror) catchUp() {
	mr.deliver.Lock()
	defer mr.deliver.Unlock()
	for range 1 << 16 {
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		evs, err := mr.m.peers.ReadAfter(ctx, mr.node, mr.id, mr.st.Head(), stream.MaxBatch)
		cancel()
		if err != nil {
			mr.m.log.Warn("catch up mirror", "stream", mr.id, "node", mr.node, "err", err)
			return
		}
		if len(evs) == 0 {
			break
		}
		mr.deliverLocked(evs)
	}
	mr.st.SetOffline(false, "")
}

// sync delivers what the owner has beyond the mirror's head, if it
// answers within ctx.
func (mr *mirror) sync(ctx context.Context) {
	h, err := mr.m.peers.Head(ctx, mr.node, mr.id)
	if err != nil || h <= mr.st.Head() {
		return
	}
	mr.deliver.Lock()
	defer mr.deliver.Unlock()
	for range 64 { // bounded: each round moves the head or ends
		before := mr.st.Head()
		if before >= h {
			return
		}
		evs, err := mr.m.peers.ReadAfter(ctx, mr.node, mr.id, before, stream.MaxBatch)
		if err != nil || len(evs) == 0 {
			return
		}
		mr.deliverLocked(evs)
		if mr.st.Head() == before {
			return
		}
	}
}

// Head is the owner's head (stream.ExternalSource).
func (mr *mirror) Head(ctx context.Context, _ string) (uint64, error) {
	h, err := mr.m.peers.Head(ctx, mr.node, mr.id)
	if errors.Is(err, cluster.ErrNodeDown) {
		// Open anyway: watchers get offline and resume once the owner
		// is back (a catch-up from 0 fills what they ask for).
		mr.headFailed = true
		return 0, nil
	}
	return h, err
}

// ReadAfter reads the owner's history (stream.ExternalSource).
func (mr *mirror) ReadAfter(ctx context.Context, _ string, after uint64, limit int) ([]*event.Event, error) {
	evs, err := mr.m.peers.ReadAfter(ctx, mr.node, mr.id, after, limit)
	return evs, unavailable(err)
}

// ReadBefore reads the owner's history (stream.ExternalSource).
func (mr *mirror) ReadBefore(ctx context.Context, _ string, before uint64, limit int) ([]*event.Event, error) {
	evs, err := mr.m.peers.ReadBefore(ctx, mr.node, mr.id, before, limit)
	return evs, unavailable(err)
}

// Release drops the subscription once the hub let the stream go.
func (mr *mirror) Release() {
	_ = mr.sub.Unsubscribe()
	mr.m.mu.Lock()
	if mr.m.mirrors[mr.id] == mr {
		delete(mr.m.mirrors, mr.id)
	}
	mr.m.mu.Unlock()
}

// unavailable keeps a lost owner a retryable condition for readers.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", stream.ErrStoreUnavailable, err)
}
