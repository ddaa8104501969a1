package api

// Whoami is the answer of GET /api/v1/whoami: who the request's token
// speaks for. With auth off, Auth is false and the rest empty.
type Whoami struct {
	Auth    bool     `json:"auth"`
	Subject string   `json:"subject,omitempty"`
	Tenant  string   `json:"tenant,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
}
