// Package api declares the wire types of the sidestream HTTP API: what
// the server writes and what its clients (sidecar/apiclient, the queue
// client, the CLI and the load generator) read. Each JSON shape is
// declared here once; the server maps its domain types (core/...) to
// these, so a change to a shape is one change in one place, and
// web/openapi.yaml documents the same names.
//
// The package imports nothing of the project: any Go program can use it.
package api
