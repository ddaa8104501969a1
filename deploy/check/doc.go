// Package check validates the deploy artifacts (Dockerfile, Kubernetes
// manifests, systemd unit, example config, Grafana dashboard) in its tests.
// It is a module of its own so that BuildKit's Dockerfile parser and the
// Kubernetes API types stay out of sidestream's go.mod; .ci/run runs it.
package check
