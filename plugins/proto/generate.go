// Package pluginpb holds the gRPC contract between the sidestream host and
// its emitter plugins. The Go code is generated from emitter.proto and
// committed; plugin authors use plugins/sdk and never import this package.
package pluginpb

// Regenerating needs only Go: ./internal/gen compiles emitter.proto with a
// pure-Go compiler and runs the generators pinned in go.mod.
//go:generate go run ./internal/gen
