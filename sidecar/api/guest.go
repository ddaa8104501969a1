package api

// Guest is one guest instance as GET /api/v1/guests lists it: where it
// was found, its labels, whether it is present, and the emitters the
// attach rules gave it.
type Guest struct {
	Name   string            `json:"name"`
	Source string            `json:"source"`
	Labels map[string]string `json:"labels,omitempty"`
	// State is "present" or "gone" (its emitters stopped, their history
	// kept).
	State  string `json:"state"`
	Path   string `json:"path,omitempty"`
	PIDs   []int  `json:"pids,omitempty"`
	Cgroup string `json:"cgroup,omitempty"`
	// Emitters are the attached emitters.
	Emitters []GuestEmitter `json:"emitters"`
}

// GuestEmitter is one emitter attached to a guest.
type GuestEmitter struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Rule string `json:"rule"`
	// State is "running", "stopped" or "failed" (Error says why).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// GuestEvent is the data of one event of the guests stream; the event's
// type says what happened: appeared, gone, attached, detached or
// attach_failed.
type GuestEvent struct {
	Guest   string            `json:"guest"`
	Source  string            `json:"source"`
	Labels  map[string]string `json:"labels,omitempty"`
	Emitter string            `json:"emitter,omitempty"`
	Kind    string            `json:"kind,omitempty"`
	Rule    string            `json:"rule,omitempty"`
	Error   string            `json:"error,omitempty"`
}
