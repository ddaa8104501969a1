#!/bin/sh
# soak.sh: a long run of steady, low load against one fresh sidestream on
# this machine (fan-out + tracker + queue at once), sampling the server's
# resident memory, open file descriptors, threads and goroutines at a fixed
# interval. It measures flatness (leaks), not speed: rates stay low so the
# machine can be shared. The figures go to $OUT/samples.csv and a summary
# (first and last sample) to stdout; BENCHMARKS.md records a run.
#
#   go build -o /tmp/soak/ss ./sidecar/cmd/sidestream
#   SS=/tmp/soak/ss DURATION=30m deploy/soak.sh
#
# Variables: SS (binary, default ./sidestream), DURATION (30m), INTERVAL
# (seconds between samples, 60), PORT (9431), OUT (directory for the
# samples, reports and server log, default soak-UTCSTAMP), and the loads:
# SUBSCRIBERS (fan-out SSE subscribers, 100), FANOUT_RATE (magic events/s,
# 20), TRACK_RATE (tracker publishes/s, 50), TRACK_USERS (20), QUEUE_RATE
# (queue messages/s, 50).
set -eu

SS=${SS:-./sidestream}
DURATION=${DURATION:-30m}
INTERVAL=${INTERVAL:-60}
PORT=${PORT:-9431}
OUT=${OUT:-soak-$(date -u +%Y%m%dT%H%M%SZ)}
SUBSCRIBERS=${SUBSCRIBERS:-100}
FANOUT_RATE=${FANOUT_RATE:-20}
TRACK_RATE=${TRACK_RATE:-50}
TRACK_USERS=${TRACK_USERS:-20}
QUEUE_RATE=${QUEUE_RATE:-50}

mkdir -p "$OUT"
data=$(mktemp -d)
server=http://127.0.0.1:$PORT

"$SS" serve --listen "127.0.0.1:$PORT" --data-dir "$data" --log-level warn 2>"$OUT/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT INT TERM

i=0
until curl -fsS "$server/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "soak: the server did not come up; see $OUT/server.log" >&2
		exit 1
	fi
	sleep 0.1
done

# sample prints one CSV row: seconds since start, RSS KiB (and its
# anonymous part: the heap and stacks; the rest is file pages, mostly the
# binary and the store's mmap, which grow with the data kept), fds,
# threads, goroutines (from /metrics).
start=$(date +%s)
sample() {
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
	threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
	fds=$(ls "/proc/$pid/fd" | wc -l)
	gor=$(curl -fsS "$server/metrics" 2>/dev/null | awk '/^sidestream_go_goroutines[{ ]/ {print $NF; exit}')
	echo "$(($(date +%s) - start)),$rss,$anon,$fds,$threads,${gor:-?}"
}

bench() {
	name=$1
	shift
	"$SS" bench "$name" --server "$server" --duration "$DURATION" --warmup 1s --quiet --pid -1 \
		--json-out "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>&1
}

echo "seconds,rss_kib,rss_anon_kib,fds,threads,goroutines" >"$OUT/samples.csv"
sample >>"$OUT/samples.csv"
bench fanout --subscribers "$SUBSCRIBERS" --rate "$FANOUT_RATE" &
b1=$!
bench track --concurrency 2 --users "$TRACK_USERS" --ops-rate "$TRACK_RATE" &
b2=$!
bench queue --producers 1 --consumers 1 --batch 10 --ops-rate "$QUEUE_RATE" &
b3=$!

while kill -0 "$b1" 2>/dev/null || kill -0 "$b2" 2>/dev/null || kill -0 "$b3" 2>/dev/null; do
	sleep "$INTERVAL"
	sample >>"$OUT/samples.csv"
done
# bench exits 3 when a throughput target is missed, which a soak's low
# rates always do; only other failures (lost events, errors) count.
status=0
for b in "$b1" "$b2" "$b3"; do
	rc=0
	wait "$b" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		status=1
	fi
done
sample >>"$OUT/samples.csv"

echo "soak: $DURATION against $("$SS" version 2>/dev/null | head -1), samples every ${INTERVAL}s in $OUT/samples.csv"
echo "first: $(sed -n 2p "$OUT/samples.csv")"
echo "last:  $(tail -n 1 "$OUT/samples.csv")"
for n in fanout track queue; do
	grep -E '^(ops|lost|errors|delivered)|lost|errors' "$OUT/$n.txt" | head -5 | sed "s/^/$n: /"
done
exit "$status"
