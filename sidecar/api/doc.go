// Package api holds sidestream's wire types: what the HTTP API sends and
// receives, shared by the server, the Go client, the CLI and bench.
package api
