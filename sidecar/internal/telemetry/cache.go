package telemetry

import "sync"

// maxSeries bounds each cache of attribute sets: past it, new keys share
// one "_other" series, so a flood of distinct names (routes, queues,
// kinds) cannot blow up the metric cardinality or the memory.
const maxSeries = 1000

// otherValue is the attribute value of keys beyond maxSeries.
const otherValue = "_other"

// cache maps a key to a value built once (typically pre-built attribute
// options), so hot paths look up instead of allocating. Lookups of a present
// key take a read lock and do not allocate.
type cache[K comparable, V any] struct {
	mu    sync.RWMutex
	m     map[K]V
	build func(K) V
	// other maps a key to its overflow key once the cache is full.
	other func(K) K
}

func newCache[K comparable, V any](build func(K) V, other func(K) K) *cache[K, V] {
	return &cache[K, V]{m: make(map[K]V), build: build, other: other}
}

func (c *cache[K, V]) get(k K) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if len(c.m) >= maxSeries {
		k = c.other(k)
		if v, ok := c.m[k]; ok {
			return v
		}
	}
	v = c.build(k)
	c.m[k] = v
	return v
}

func otherString(string) string { return otherValue }
