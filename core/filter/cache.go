package filter

import (
	"fmt"

	"github.com/google/cel-go/cel"
	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is how many distinct expressions a Cache keeps.
const DefaultCacheSize = 256

// Cache compiles each distinct expression once and hands every caller
// with the same text the same *Filter, so their verdicts are shared. It
// keeps the size most recently used expressions: a client sending ever
// new ones evicts old ones (a subscriber keeps its Filter all the same)
// rather than growing the cache.
type Cache struct {
	env *cel.Env
	lru *lru.Cache[string, *Filter]
}

// NewCache returns a cache of size expressions (<= 0: DefaultCacheSize).
func NewCache(size int) (*Cache, error) {
	if size <= 0 {
		size = DefaultCacheSize
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("filter environment: %w", err)
	}
	l, err := lru.New[string, *Filter](size)
	if err != nil {
		return nil, fmt.Errorf("filter cache: %w", err)
	}
	return &Cache{env: env, lru: l}, nil
}

// Get returns the compiled filter of text, or an *Error (ErrInvalid)
// naming the position of what is wrong with it. Invalid texts are not
// kept: they cost a parse each, bounded by MaxLength.
func (c *Cache) Get(text string) (*Filter, error) {
	if f, ok := c.lru.Get(text); ok {
		return f, nil
	}
	f, err := compile(c.env, text)
	if err != nil {
		return nil, err
	}
	// Two callers may compile the same new text at once: the first to
	// add wins and both use its Filter, so they share verdicts.
	if prev, ok, _ := c.lru.PeekOrAdd(text, f); ok {
		return prev, nil
	}
	return f, nil
}

// Len returns the number of expressions kept.
func (c *Cache) Len() int { return c.lru.Len() }
