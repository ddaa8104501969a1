package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
)

var _ cluster.Registry = (*Registry)(nil)

// Registry is the cluster's emitter registry in a JetStream KV bucket
// (key: emitter id, value: cluster.Entry as JSON). A watch keeps a local
// copy for lists; a miss there reads the bucket, so an emitter created a
// moment ago on another node is found.
type Registry struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.RWMutex
	cache map[string]cluster.Entry

	watcher jetstream.KeyWatcher
	done    chan struct{}
}

// OpenRegistry opens (creating) the bucket and loads it.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Registry, error) {
	r := &Registry{log: log, cache: map[string]cluster.Entry{}, done: make(chan struct{})}
	err := retryJS(ctx, "emitters bucket", func(ctx context.Context) (err error) {
		r.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucketEmitters, Replicas: max(replicas, 1), History: 1, Storage: jetstream.FileStorage})
		return err
	})
	if err != nil {
		return nil, err
	}
	// The watcher outlives ctx (it ends with Close).
	r.watcher, err = r.kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("watch emitters: %w", err)
	}
	initial := make(chan struct{})
	go r.watch(initial)
	select {
	case <-initial:
		return r, nil
	case <-ctx.Done():
		_ = r.watcher.Stop()
		<-r.done
		return nil, fmt.Errorf("load emitters: %w", ctx.Err())
	}
}

func (r *Registry) watch(initial chan struct{}) {
	defer close(r.done)
	loaded := false
	for u := range r.watcher.Updates() {
		if u == nil { // every stored value was delivered
			if !loaded {
				loaded = true
				close(initial)
			}
			continue
		}
		r.apply(u)
	}
	if !loaded {
		close(initial)
	}
}

func (r *Registry) apply(u jetstream.KeyValueEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u.Operation() != jetstream.KeyValuePut {
		delete(r.cache, u.Key())
		return
	}
	var e cluster.Entry
	if err := json.Unmarshal(u.Value(), &e); err != nil {
		r.log.Warn("unreadable registry entry", "key", u.Key(), "err", err)
		return
	}
	r.cache[u.Key()] = e
}

// Claim records e unless its id is taken.
func (r *Registry) Claim(ctx context.Context, e cluster.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := r.kv.Create(ctx, e.Spec.ID, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("emitter %s: %w", e.Spec.ID, emitter.ErrExists)
		}
		return fmt.Errorf("claim emitter %s: %w", e.Spec.ID, err)
	}
	r.remember(e)
	return nil
}

// Put records e.
func (r *Registry) Put(ctx context.Context, e cluster.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := r.kv.Put(ctx, e.Spec.ID, b); err != nil {
		return fmt.Errorf("register emitter %s: %w", e.Spec.ID, err)
	}
	r.remember(e)
	return nil
}

func (r *Registry) remember(e cluster.Entry) {
	r.mu.Lock()
	r.cache[e.Spec.ID] = e
	r.mu.Unlock()
}

// Delete forgets an emitter.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if err := r.kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("unregister emitter %s: %w", id, err)
	}
	r.mu.Lock()
	delete(r.cache, id)
	r.mu.Unlock()
	return nil
}

// Get returns the entry of id.
func (r *Registry) Get(ctx context.Context, id string) (cluster.Entry, error) {
	r.mu.RLock()
	e, ok := r.cache[id]
	r.mu.RUnlock()
	if ok {
		return e, nil
	}
	kve, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return cluster.Entry{}, fmt.Errorf("emitter %q: %w", id, emitter.ErrNotFound)
	}
	if err != nil {
		return cluster.Entry{}, fmt.Errorf("look up emitter %s: %w", id, err)
	}
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return cluster.Entry{}, fmt.Errorf("registry entry %s: %w", id, err)
	}
	return e, nil
}

// List returns every entry.
func (r *Registry) List(context.Context) ([]cluster.Entry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]cluster.Entry, 0, len(r.cache))
	for _, e := range r.cache {
		out = append(out, e)
	}
	return out, nil
}

// Counts returns how many emitters each node runs.
func (r *Registry) Counts() map[string]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]int{}
	for _, e := range r.cache {
		out[e.Node]++
	}
	return out
}

// Close stops the watch.
func (r *Registry) Close(ctx context.Context) error {
	_ = r.watcher.Stop()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close registry: %w", ctx.Err())
	}
}
