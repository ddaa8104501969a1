// Package pluginpb holds the gRPC contract between the sidestream host and
// its emitter plugins. The Go code is generated from emitter.proto and
// committed; plugin authors use plugins/sdk and never import this package.
package pluginpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative emitter.proto
