package queueclient

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestDeleteBodyIsJSON: the delete frame's body is JSON whatever the ids
// hold, and carries them unchanged (Go-syntax quoting would write
// "\x00", which no JSON parser accepts).
func TestDeleteBodyIsJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ids    []string
		claims []string
	}{
		{"plain", []string{"0000000000000001", "00000000000000ff"}, []string{"3f1c0a2e-9b7d-4c41-8a53-5a7d0e1b2c3d"}},
		{"control", []string{"a\x00b", "tab\there"}, []string{"c\x1f"}},
		{"quote and backslash", []string{`q"uote`, `back\slash`}, nil},
		{"non-ascii", []string{"é", "\u2028", "\x7f"}, []string{"ünï"}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := deleteBody("q-1", tc.ids, tc.claims)
			var got struct {
				Queue  string   `json:"queue_name"`
				IDs    []string `json:"message_ids"`
				Claims []string `json:"claim_ids"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("deleteBody = %s: not JSON: %v", b, err)
			}
			if got.Queue != "q-1" || !slices.Equal(got.IDs, tc.ids) || !slices.Equal(got.Claims, tc.claims) {
				t.Fatalf("deleteBody = %s, decoded %+v", b, got)
			}
		})
	}
}
