// Package natsbus is the NATS adapter of the cluster: subjects, request and
// reply between nodes, the JetStream KV registries, the JetStream-backed
// tracker streams and the JetStream queue driver. It is a leaf: the domain
// packages declare the small interfaces it implements, and only
// sidecar/internal/app wires it.
//
// The queue driver (QueueDriver, files queue*.go) is a replicated state
// machine: a JetStream stream is the ordered log of every queue write of
// every node, and each node applies it to its own deterministic
// in-memory state (core/queue/memq). QueueDriver's documentation says
// why.
package natsbus
