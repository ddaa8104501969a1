// Package cluster is the multi-node view of emitters: one registry of
// every emitter with the node that runs it, creates, deletes and commands
// forwarded to that node, and streams of emitters run elsewhere served
// from local mirrors. It declares the small interfaces its transport
// implements (core/natsbus); a single node never uses it.
package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

// ErrNodeDown is returned when the node that owns an emitter cannot be
// reached; it is an emitter.ErrUnavailable, so callers may retry.
var ErrNodeDown = fmt.Errorf("owner node unreachable: %w", emitter.ErrUnavailable)

// Entry is one emitter of the cluster registry.
type Entry struct {
	Spec emitter.Spec `json:"spec"`
	// Node runs the emitter's plugin and owns its stream.
	Node string `json:"node"`
}

// Node is a member of the cluster as this node sees it.
type Node struct {
	Name      string    `json:"name"`
	Advertise string    `json:"advertise,omitempty"`
	Version   string    `json:"version,omitempty"`
	Started   time.Time `json:"started"`
	// LastSeen is when this node last heard from it (zero: never since
	// this process started).
	LastSeen time.Time `json:"-"`
	Up       bool      `json:"-"`
}

// ErrRemote wraps an owner node's failure that has no domain meaning here
// (its message is kept).
var ErrRemote = errors.New("remote node failed")
