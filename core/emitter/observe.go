package emitter

import "time"

// CommandStage is one part of a command's time, in the order a command
// goes through them. A command's time on the node is the sum of the three
// (HTTP aside).
type CommandStage uint8

const (
	// StageQueue: from the call until the plugin round trip that carries
	// it starts; meanwhile the emitter's previous round trip runs.
	StageQueue CommandStage = iota
	// StagePlugin: its batch's round trip to the plugin process.
	StagePlugin
	// StageCommit: from the round trip's end until the batch's events and
	// checkpoint are durable (or the commit failed).
	StageCommit
)

func (s CommandStage) String() string {
	switch s {
	case StageQueue:
		return "queue"
	case StagePlugin:
		return "plugin"
	case StageCommit:
		return "commit"
	}
	return "unknown"
}

// CommandObserver learns where commands spend their time and how many
// share a round trip (telemetry). It is called on the command path, so
// its methods must be quick and must not block.
type CommandObserver interface {
	// CommandStage reports that n commands of an emitter of kind each
	// spent d in stage.
	CommandStage(kind string, stage CommandStage, d time.Duration, n int)
	// CommandBatch reports one plugin round trip carrying n commands.
	CommandBatch(kind string, n int)
}

// ManagerOption configures a Manager.
type ManagerOption func(*Manager)

// WithCommandObserver reports every command's stages to o.
func WithCommandObserver(o CommandObserver) ManagerOption {
	return func(m *Manager) { m.obs = o }
}

type noObserver struct{}

func (noObserver) CommandStage(string, CommandStage, time.Duration, int) {}
func (noObserver) CommandBatch(string, int)                              {}
