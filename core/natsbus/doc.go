// Package natsbus is the NATS adapter of the cluster: subjects, request and
// reply between nodes, the JetStream KV registries, the JetStream-backed
// tracker streams and the JetStream queue driver. It is a leaf: the domain
// packages declare the small interfaces it implements, and only
// sidecar/internal/app wires it.
package natsbus
