package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Reserved metadata keys Zaqar users know.
const (
	MetaDefaultTTL  = "_default_message_ttl"
	MetaMaxPostSize = "_max_messages_post_size"
)

// Limits bound what clients may ask. Zaqar's defaults are kept except
// the per-request message counts, raised from 20 to 100 so producers and
// consumers can batch.
type Limits struct {
	MaxQueuesPerPage    int
	MaxMessagesPerPage  int
	MaxMessagesPerClaim int
	MaxMessagesPerPost  int
	// MaxPostBytes bounds the bodies of one post (and so of one message);
	// a queue's _max_messages_post_size may lower it.
	MaxPostBytes     int
	MaxMetadataBytes int

	MinMessageTTL, MaxMessageTTL, DefaultMessageTTL time.Duration
	MinClaimTTL, MaxClaimTTL, DefaultClaimTTL       time.Duration
	MinClaimGrace, MaxClaimGrace, DefaultClaimGrace time.Duration
}

// DefaultLimits returns Zaqar's limits (with batches of up to 100).
func DefaultLimits() Limits {
	return Limits{
		MaxQueuesPerPage:    20,
		MaxMessagesPerPage:  100,
		MaxMessagesPerClaim: 100,
		MaxMessagesPerPost:  100,
		MaxPostBytes:        256 << 10,
		MaxMetadataBytes:    64 << 10,
		MinMessageTTL:       60 * time.Second,
		MaxMessageTTL:       14 * 24 * time.Hour,
		DefaultMessageTTL:   time.Hour,
		MinClaimTTL:         60 * time.Second,
		MaxClaimTTL:         12 * time.Hour,
		DefaultClaimTTL:     60 * time.Second,
		MinClaimGrace:       0,
		MaxClaimGrace:       12 * time.Hour,
		DefaultClaimGrace:   60 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultLimits and keeps defaults in
// range.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	ints := []struct {
		v *int
		d int
	}{
		{&l.MaxQueuesPerPage, d.MaxQueuesPerPage}, {&l.MaxMessagesPerPage, d.MaxMessagesPerPage},
		{&l.MaxMessagesPerClaim, d.MaxMessagesPerClaim}, {&l.MaxMessagesPerPost, d.MaxMessagesPerPost},
		{&l.MaxPostBytes, d.MaxPostBytes}, {&l.MaxMetadataBytes, d.MaxMetadataBytes},
	}
	for _, f := range ints {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	durs := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&l.MinMessageTTL, d.MinMessageTTL}, {&l.MaxMessageTTL, d.MaxMessageTTL},
		{&l.MinClaimTTL, d.MinClaimTTL}, {&l.MaxClaimTTL, d.MaxClaimTTL},
		{&l.MaxClaimGrace, d.MaxClaimGrace},
	}
	for _, f := range durs {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if l.MinClaimGrace < 0 {
		l.MinClaimGrace = 0
	}
	l.DefaultMessageTTL = clampDefault(l.DefaultMessageTTL, d.DefaultMessageTTL, l.MinMessageTTL, l.MaxMessageTTL)
	l.DefaultClaimTTL = clampDefault(l.DefaultClaimTTL, d.DefaultClaimTTL, l.MinClaimTTL, l.MaxClaimTTL)
	l.DefaultClaimGrace = clampDefault(l.DefaultClaimGrace, d.DefaultClaimGrace, l.MinClaimGrace, l.MaxClaimGrace)
	return l
}

func clampDefault(v, def, lo, hi time.Duration) time.Duration {
	if v <= 0 {
		v = def
	}
	return min(max(v, lo), hi)
}

// CheckName validates a queue name (Zaqar: 1..64 of [a-zA-Z0-9_-]). It
// runs for every queue operation, several times a frame, so it is a loop
// rather than the regexp ^[a-zA-Z0-9_-]{1,64}$ (BenchmarkCheckName).
func CheckName(name string) error {
	if !validName(name) {
		return invalid("queue_name", "must be 1 to 64 characters of [a-zA-Z0-9_-], got %q", truncate(name, 80))
	}
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckTenant validates a project id: 1..256 printable ASCII characters
// without spaces or '/'.
func CheckTenant(t string) error {
	if t == "" || len(t) > 256 {
		return invalid("X-Project-Id", "must be 1 to 256 characters")
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return invalid("X-Project-Id", "must be printable ASCII without spaces or '/'")
		}
	}
	return nil
}

// CheckKey validates both parts of k.
func CheckKey(k Key) error {
	if err := CheckTenant(k.Tenant); err != nil {
		return err
	}
	return CheckName(k.Queue)
}

// Invalid builds a validation error for field, for layers that check
// input the service cannot see (an explicit zero, a wrong JSON type).
func Invalid(field, format string, args ...any) error { return invalid(field, format, args...) }

func checkRange(field string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return invalid(field, "must be between %d and %d seconds, got %s", int64(lo/time.Second), int64(hi/time.Second), v)
	}
	return nil
}

func checkCount(field string, n, hi int) error {
	if n < 1 || n > hi {
		return invalid(field, "must be between 1 and %d, got %d", hi, n)
	}
	return nil
}

// queueConf is what a post needs from a queue's metadata.
type queueConf struct {
	defaultTTL time.Duration
	maxPost    int
}

// checkMetadata validates a metadata document and returns its reserved
// settings resolved against l.
func (l Limits) checkMetadata(meta json.RawMessage) (queueConf, error) {
	conf := queueConf{defaultTTL: l.DefaultMessageTTL, maxPost: l.MaxPostBytes}
	if len(meta) > l.MaxMetadataBytes {
		return conf, fmt.Errorf("%w: metadata is %d bytes, the limit is %d", ErrTooLarge, len(meta), l.MaxMetadataBytes)
	}
	trimmed := bytes.TrimSpace(meta)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return conf, invalid("metadata", "must be a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return conf, invalid("metadata", "must be a JSON object: %v", err)
	}
	if raw, ok := m[MetaDefaultTTL]; ok {
		var secs int64
		if err := json.Unmarshal(raw, &secs); err != nil {
			return conf, invalid(MetaDefaultTTL, "must be an integer number of seconds")
		}
		d := time.Duration(secs) * time.Second
		if err := checkRange(MetaDefaultTTL, d, l.MinMessageTTL, l.MaxMessageTTL); err != nil {
			return conf, err
		}
		conf.defaultTTL = d
	}
	if raw, ok := m[MetaMaxPostSize]; ok {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil || n < 1 || n > l.MaxPostBytes {
			return conf, invalid(MetaMaxPostSize, "must be an integer between 1 and %d", l.MaxPostBytes)
		}
		conf.maxPost = n
	}
	return conf, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
