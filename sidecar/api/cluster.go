package api

import "time"

// Cluster modes (Cluster.Mode).
const (
	ModeSingle   = "single"   // one node, no NATS
	ModeEmbedded = "embedded" // every node runs an embedded NATS server, clustered by routes
	ModeExternal = "external" // every node connects to an external NATS cluster
)

// Node health (Node.Health).
const (
	HealthUp   = "up"
	HealthDown = "down"
)

// Cluster is the cluster as one node sees it.
type Cluster struct {
	// Mode is ModeSingle, ModeEmbedded or ModeExternal.
	Mode string `json:"mode"`
	// Name is the cluster's name (empty on a single node).
	Name string `json:"name,omitempty"`
	// Node is the name of the node that answered.
	Node string `json:"node"`
	// Replicas is the JetStream replica count of node-less streams and
	// queues.
	Replicas int    `json:"replicas,omitempty"`
	Nodes    []Node `json:"nodes"`
	// NATS is the answering node's NATS connection (nil on a single node).
	NATS *NATSState `json:"nats,omitempty"`
}

// Node is one member of the cluster.
type Node struct {
	Name string `json:"name"`
	// Advertise is the address other nodes and clients reach it at.
	Advertise string `json:"advertise,omitempty"`
	// Health is HealthUp or HealthDown.
	Health string `json:"health"`
	// Self marks the node that answered.
	Self bool `json:"self,omitempty"`
	// Emitters is the number of emitters it owns.
	Emitters int    `json:"emitters"`
	Version  string `json:"version,omitempty"`
	// LastSeen is when the answering node last heard from it; left out
	// when zero (omitzero: omitempty never omits a time.Time).
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// NATSState is one node's view of NATS.
type NATSState struct {
	Connected bool `json:"connected"`
	// Server is the NATS server the node is connected to.
	Server    string         `json:"server,omitempty"`
	Routes    []Route        `json:"routes,omitempty"`
	JetStream JetStreamState `json:"jetstream"`
}

// Route is one cluster route of the node's embedded NATS server.
type Route struct {
	Remote string `json:"remote"` // the remote server's name
	Addr   string `json:"addr,omitempty"`
}

// JetStreamState sums up JetStream as the node sees it.
type JetStreamState struct {
	Enabled    bool   `json:"enabled"`
	MetaLeader string `json:"meta_leader,omitempty"`
	Streams    int    `json:"streams"`
	Consumers  int    `json:"consumers"`
	Bytes      uint64 `json:"bytes"`
}
