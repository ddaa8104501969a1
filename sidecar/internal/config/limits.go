package config

import "fmt"

// Limits bound what one server and one client may take: connections
// (so the process keeps the file descriptors its store and plugins need)
// and the rate of writes. The zero values are the defaults: connections
// bounded by the open-file limit, no per-address connection limit, no
// write rate limit.
type Limits struct {
	// MaxConnections bounds the open HTTP connections, streams
	// included; one more is answered 503 with Retry-After and closed.
	MaxConnections int `yaml:"max_connections" flag:"max-connections" unset:"derived from the open-file limit (RLIMIT_NOFILE): the limit less 128 and an eighth" help:"most HTTP connections open at once (503 beyond)"`
	// MaxConnectionsPerIP bounds the open connections of one client
	// address (off by default: behind a proxy all clients share one).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" flag:"max-connections-per-ip" unset:"none" help:"most HTTP connections open at once from one client address (503 beyond); 0 is no per-address limit, as behind a proxy every client shares one"`
	// WriteRate is the sustained writes per second allowed to one
	// client: its bearer token, else its address. Writes are every
	// request but GET, HEAD and OPTIONS, and the GET routes that write
	// (/track/{user}, /fib/next, /fib/previous, /fib/reset).
	WriteRate float64 `yaml:"write_rate" flag:"write-rate" unset:"no limit" help:"writes per second allowed to one client (bearer token, else address); 429 with Retry-After beyond"`
	// WriteBurst is how many writes a client may make at once above the
	// rate (default: the rate rounded up, at least 1).
	WriteBurst int `yaml:"write_burst" flag:"write-burst" unset:"the write rate rounded up, at least 1" help:"writes one client may make at once above write_rate"`
}

func (l Limits) validate() []error {
	var errs []error
	for _, f := range []struct {
		key string
		v   float64
	}{
		{"limits.max_connections", float64(l.MaxConnections)},
		{"limits.max_connections_per_ip", float64(l.MaxConnectionsPerIP)},
		{"limits.write_rate", l.WriteRate},
		{"limits.write_burst", float64(l.WriteBurst)},
	} {
		if f.v < 0 {
			errs = append(errs, &FieldError{f.key, fmt.Sprintf("must not be negative, not %v", f.v)})
		}
	}
	return errs
}
