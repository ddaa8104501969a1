package api

import "time"

// Cluster is GET /api/v1/cluster: the nodes this node knows and the state
// of the NATS cluster under them. A single node reports mode "single" and
// itself alone.
type Cluster struct {
	// Mode is single, embedded (NATS inside the sidecars) or external.
	Mode     string     `json:"mode"`
	Name     string     `json:"name,omitempty"`
	Node     string     `json:"node"`
	Replicas int        `json:"replicas,omitempty"`
	Nodes    []Node     `json:"nodes"`
	NATS     *NATSState `json:"nats,omitempty"`
}

// Node is one member of the cluster.
type Node struct {
	Name      string `json:"name"`
	Advertise string `json:"advertise,omitempty"`
	// Health is up or down (not heard from for three heartbeats).
	Health   string    `json:"health"`
	Self     bool      `json:"self,omitempty"`
	Emitters int       `json:"emitters"`
	Version  string    `json:"version,omitempty"`
	LastSeen time.Time `json:"last_seen,omitempty"`
}

// NATSState is the NATS connection and JetStream as this node sees them.
type NATSState struct {
	Connected bool           `json:"connected"`
	Server    string         `json:"server,omitempty"`
	Routes    []Route        `json:"routes,omitempty"`
	JetStream JetStreamState `json:"jetstream"`
}

// Route is one route of the embedded NATS server to another node.
type Route struct {
	Remote string `json:"remote"`
	Addr   string `json:"addr,omitempty"`
}

// JetStreamState is JetStream's view of the cluster.
type JetStreamState struct {
	Enabled    bool   `json:"enabled"`
	MetaLeader string `json:"meta_leader,omitempty"`
	Streams    int    `json:"streams"`
	Consumers  int    `json:"consumers"`
	Bytes      uint64 `json:"bytes"`
}
