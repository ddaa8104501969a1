package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/cluster"
)

// NodesOptions tune membership.
type NodesOptions struct {
	Replicas int
	// Interval between heartbeats (default 1s); a node missing three is down.
	Interval time.Duration
}

// Nodes is the cluster's membership: each node records itself in a KV
// bucket (so nodes that are down stay listed) and publishes a heartbeat
// every Interval; a node not heard from for three is down. A node listed
// in the bucket (or Expected) but not heard since this one started
// listening is judged the same way from then: a peer whose last heartbeat
// came just before (both were starting) and that died since is down too.
type Nodes struct {
	nc   *nats.Conn
	kv   jetstream.KeyValue
	self cluster.Node
	opts NodesOptions
	log  *slog.Logger

	mu       sync.Mutex
	nodes    map[string]*cluster.Node
	watchers map[int]func(cluster.Node)
	nextID   int
	// unheard are the nodes known but not heard since this node started
	// listening, each with when it was expected from.
	unheard map[string]time.Time

	sub    *nats.Subscription
	cancel context.CancelFunc
	done   chan struct{}
}

// StartNodes joins the membership as self.
func StartNodes(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, self cluster.Node, o NodesOptions, log *slog.Logger) (*Nodes, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	n := &Nodes{nc: nc, self: self, opts: o, log: log, nodes: map[string]*cluster.Node{},
		watchers: map[int]func(cluster.Node){}, unheard: map[string]time.Time{}}
	err := retryJS(ctx, "nodes bucket", func(ctx context.Context) (err error) {
		n.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucketNodes, Replicas: max(o.Replicas, 1), History: 1, Storage: jetstream.FileStorage})
		return err
	})
	if err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(self)
	if err := retryJS(ctx, "record node", func(ctx context.Context) error { _, err := n.kv.Put(ctx, self.Name, rec); return err }); err != nil {
		return nil, err
	}
	if err := n.loadKnown(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	listening := time.Now()
	for name := range n.unheard {
		n.unheard[name] = listening
	}
	n.mu.Unlock()
	if n.sub, err = nc.Subscribe(subjectHeartbeat, n.onHeartbeat); err != nil {
		return nil, fmt.Errorf("subscribe heartbeats: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go n.loop(bg)
	n.log.Debug("membership joined", "node", self.Name, "known", len(n.List()))
	return n, nil
}

func (n *Nodes) loadKnown(ctx context.Context) error {
	lister, err := n.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		entry, err := n.kv.Get(ctx, key)
		if err != nil {
			continue // deleted meanwhile
		}
		var rec cluster.Node
		if json.Unmarshal(entry.Value(), &rec) == nil && rec.Name != "" {
			n.mu.Lock()
			if _, ok := n.nodes[rec.Name]; !ok && rec.Name != n.self.Name {
				n.nodes[rec.Name] = &rec
				n.unheard[rec.Name] = time.Time{} // from when we listen
			}
			n.mu.Unlock()
		}
	}
	n.mu.Lock()
	self := n.self
	self.Up, self.LastSeen = true, time.Now()
	n.nodes[self.Name] = &self
	n.mu.Unlock()
	return nil
}

func (n *Nodes) loop(ctx context.Context) {
	defer close(n.done)
	beat, _ := json.Marshal(n.self)
	t := time.NewTicker(n.opts.Interval)
	defer t.Stop()
	_ = n.nc.Publish(subjectHeartbeat, beat)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = n.nc.Publish(subjectHeartbeat, beat)
			n.expire(time.Now(), n.nc.IsConnected())
		}
	}
}

func (n *Nodes) onHeartbeat(m *nats.Msg) {
	var rec cluster.Node
	if json.Unmarshal(m.Data, &rec) != nil || rec.Name == "" {
		return
	}
	now := time.Now()
	n.mu.Lock()
	old, ok := n.nodes[rec.Name]
	changed := !ok || !old.Up || !old.Started.Equal(rec.Started)
	rec.Up, rec.LastSeen = true, now
	n.nodes[rec.Name] = &rec
	delete(n.unheard, rec.Name)
	watchers := n.watchersLocked(changed)
	n.mu.Unlock()
	if changed && rec.Name != n.self.Name {
		n.log.Info("node up", "node", rec.Name, "started", rec.Started)
	}
	for _, w := range watchers {
		w(rec)
	}
}

// expire marks nodes silent for three heartbeats down. Silence is judged
// against this node's own heartbeat, which comes back the same way: a
// node too busy to read its subscription sees every heartbeat late, its
// own as well, and judges nobody until its own arrives again, while a
// peer cut off by a partition stays silent as ours keep coming. Without
// a connection (connected false) silence is silence.
func (n *Nodes) expire(now time.Time, connected bool) {
	limit := 3 * n.opts.Interval
	var down []cluster.Node
	n.mu.Lock()
	var selfSeen time.Time
	if self := n.nodes[n.self.Name]; self != nil {
		selfSeen = self.LastSeen
	}
	for name, rec := range n.nodes {
		if name == n.self.Name || !rec.Up || now.Sub(rec.LastSeen) <= limit {
			continue
		}
		if connected && selfSeen.Sub(rec.LastSeen) < limit-n.opts.Interval {
			continue // our own heartbeats are as late: we are slow, not they
		}
		rec.Up = false
		down = append(down, *rec)
	}
	down = append(down, n.expireUnheardLocked(now, selfSeen, connected)...)
	watchers := n.watchersLocked(len(down) > 0)
	n.mu.Unlock()
	for _, rec := range down {
		n.log.Warn("node down", "node", rec.Name, "last_seen", rec.LastSeen)
		for _, w := range watchers {
			w(rec)
		}
	}
}

// expireUnheardLocked reports the known nodes that stayed silent for three
// heartbeats since they were expected (judged against this node's own
// heartbeat as expire does): they were never seen up here, so nothing
// else would ever tell the watchers of their loss.
func (n *Nodes) expireUnheardLocked(now, selfSeen time.Time, connected bool) []cluster.Node {
	limit := 3 * n.opts.Interval
	var down []cluster.Node
	for name, since := range n.unheard {
		if now.Sub(since) <= limit || (connected && selfSeen.Sub(since) < limit-n.opts.Interval) {
			continue
		}
		delete(n.unheard, name)
		if rec := n.nodes[name]; rec != nil && !rec.Up {
			down = append(down, *rec)
		}
	}
	return down
}

func (n *Nodes) watchersLocked(changed bool) []func(cluster.Node) {
	if !changed {
		return nil
	}
	out := make([]func(cluster.Node), 0, len(n.watchers))
	for _, w := range n.watchers {
		out = append(out, w)
	}
	return out
}

// Watch calls fn (on the membership's goroutines: be quick) whenever a
// node comes up, restarts or goes down; cancel stops it.
func (n *Nodes) Watch(fn func(cluster.Node)) (cancel func()) {
	n.mu.Lock()
	id := n.nextID
	n.nextID++
	n.watchers[id] = fn
	n.mu.Unlock()
	return func() { n.mu.Lock(); delete(n.watchers, id); n.mu.Unlock() }
}

// Expect adds node, if this node has never known it, as a member to hear
// from: silent for three heartbeats from now, it is down and watchers are
// told. Mirrors expect the owners of the streams they serve, which a node
// may learn of before it hears them (their record was not yet in the
// bucket when it read it).
func (n *Nodes) Expect(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.nodes[node]; ok || node == "" {
		return
	}
	n.nodes[node] = &cluster.Node{Name: node}
	n.unheard[node] = time.Now()
}

// Self is this node.
func (n *Nodes) Self() cluster.Node { return n.self }

// Known reports whether node is a member (up or down).
func (n *Nodes) Known(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.nodes[node]
	return ok
}

// Up reports whether node is heard from.
func (n *Nodes) Up(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.nodes[node]
	return ok && rec.Up
}

// List returns every known node, by name.
func (n *Nodes) List() []cluster.Node {
	n.mu.Lock()
	out := make([]cluster.Node, 0, len(n.nodes))
	for _, rec := range n.nodes {
		out = append(out, *rec)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops heartbeats.
func (n *Nodes) Close(ctx context.Context) error {
	n.cancel()
	_ = n.sub.Unsubscribe()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close nodes: %w", ctx.Err())
	}
}
