//go:build !unix

package httpapi

// openFileLimit is unknown here: DefaultMaxConns uses its fallback.
func openFileLimit() uint64 { return 0 }
