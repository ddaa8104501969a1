package logplugin

import (
	"fmt"
	"math/rand/v2"
)

// levelWeight makes synthetic logs look like real ones: mostly INFO, some
// DEBUG, few WARN, rare ERROR.
var levelWeight = map[string]int{"INFO": 70, "DEBUG": 15, "WARN": 10, "ERROR": 5}

// msgTemplate appends one message. The styles are those of a guest's
// console and journal: kernel, systemd, sshd, cron and an application.
type msgTemplate func(dst []byte, r *rand.Rand) []byte

var templates = map[string][]msgTemplate{
	"INFO": {
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "systemd[1]: Started Session %d of User ubuntu.", r.IntN(5000))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "sshd[%d]: Accepted publickey for ubuntu from 10.%d.%d.%d port %d ssh2: ED25519",
				pid(r), r.IntN(256), r.IntN(256), 1+r.IntN(254), 32768+r.IntN(28000))
		},
		func(d []byte, r *rand.Rand) []byte {
			paths := [...]string{"/api/v1/items", "/api/v1/orders", "/healthz", "/api/v1/users"}
			return fmt.Appendf(d, "app[%d]: GET %s/%d 200 %dms", pid(r), paths[r.IntN(len(paths))], r.IntN(10000), 1+r.IntN(120))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "kernel: [%s] EXT4-fs (vda1): re-mounted. Opts: errors=remount-ro", uptime(r))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "CRON[%d]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)", pid(r))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "systemd-networkd[%d]: ens3: DHCPv4 address 10.0.%d.%d/24 via 10.0.%d.1",
				pid(r), r.IntN(256), 2+r.IntN(250), r.IntN(256))
		},
	},
	"WARN": {
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "app[%d]: slow request GET /api/v1/orders took %dms (threshold 500ms)", pid(r), 500+r.IntN(4500))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "sshd[%d]: Invalid user admin from 203.0.113.%d port %d", pid(r), 1+r.IntN(254), 32768+r.IntN(28000))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "kernel: [%s] TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.", uptime(r))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "systemd-journald[%d]: Journal usage %d%% of the configured limit", pid(r), 80+r.IntN(20))
		},
	},
	"ERROR": {
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "kernel: [%s] Out of memory: Killed process %d (java) total-vm:%dkB", uptime(r), pid(r), 1<<20+r.IntN(1<<22))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "systemd[1]: app.service: Main process exited, code=exited, status=%d/FAILURE", 1+r.IntN(3))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "app[%d]: db: dial tcp 10.0.0.5:5432: connect: connection refused", pid(r))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "kernel: [%s] blk_update_request: I/O error, dev vda, sector %d", uptime(r), r.IntN(1<<24))
		},
	},
	"DEBUG": {
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "app[%d]: cache hit key=user:%d ttl=%ds", pid(r), r.IntN(100000), r.IntN(3600))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "sshd[%d]: debug1: channel %d: new [client-session]", pid(r), r.IntN(10))
		},
		func(d []byte, r *rand.Rand) []byte {
			return fmt.Appendf(d, "systemd-networkd[%d]: ens3: DHCPv4 lease renewal in %ds", pid(r), 60+r.IntN(3600))
		},
	},
}

func pid(r *rand.Rand) int { return 300 + r.IntN(60000) }

func uptime(r *rand.Rand) string {
	return fmt.Sprintf("%5d.%06d", r.IntN(90000), r.IntN(1000000))
}

// appendMessage appends a random message of the given level.
func appendMessage(dst []byte, r *rand.Rand, level string) []byte {
	ts := templates[level]
	return ts[r.IntN(len(ts))](dst, r)
}
