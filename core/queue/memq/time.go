package memq

import "time"

// Instants are Unix ns inside the State: that is what the log carries.

func unix(n int64) time.Time { return time.Unix(0, n).UTC() }

func ns(n int64) time.Duration { return time.Duration(n) }
