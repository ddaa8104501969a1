package api

import "encoding/json"

// Plugin is one plugin process as GET /api/v1/plugins lists it.
type Plugin struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	PID       int    `json:"pid"`
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	Instances int    `json:"instances"`
	LastError string `json:"last_error,omitempty"`
}

// Kind is one emitter kind as GET /api/v1/kinds lists it: what its
// plugin describes, and the plugin's state. Error says why the
// description is missing (the plugin could not answer).
type Kind struct {
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Description  string          `json:"description,omitempty"`
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	Commands     []Command       `json:"commands,omitempty"`
	EventTypes   []string        `json:"event_types,omitempty"`
	State        string          `json:"state"`
	Error        string          `json:"error,omitempty"`
}

// Command names a command a kind accepts.
type Command struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Items is the answer of the list routes that have no cursor
// (/api/v1/plugins, /api/v1/kinds).
type Items[T any] struct {
	Items []T `json:"items"`
}

// Status is the answer of /healthz and /readyz when all is well.
type Status struct {
	Status string `json:"status"`
}
