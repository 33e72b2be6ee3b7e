#!/usr/bin/env bash
# Bounded soak test: the built rblmilter under sustained load from milterbench, against
# milterbench's test DNS server on loopback (nothing leaves the machine).
#
#   ./scripts/soak.sh                       # 30s warm-up, then 120s measured
#   SOAK_DURATION=10m ./scripts/soak.sh     # longer
#
# Settings (environment): SOAK_DURATION (measured phase, default 120s), SOAK_WARMUP (30s),
# SOAK_CONCURRENCY (32 concurrent MTA sessions), SOAK_CACHE (cache.size, 20000: small, so
# that the cache fills and evicts), SOAK_LOSS (share of queries the second list never
# answers, 0.02: timeouts in the mix), SOAK_PORT_BASE (first of three loopback ports,
# 25350).
#
# The client addresses are mostly fresh (every run sends new ones; half repeat from a
# pool of 5000), 10% listed. Checks, each printed as PASS or FAIL:
#   - no session failed and every verdict is right (milterbench: listed -> 554, clean ->
#     accept; it exits 1 otherwise);
#   - goroutines return to their idle value after each phase;
#   - the cache never holds more than cache.size answers;
#   - open file descriptors return to their idle value;
#   - resident memory after the measured phase is within 20% (+8 MiB) of what it was
#     after the warm-up: memory does not grow with the number of sessions.
# Exit status 1 if any check failed. The summary at the end is what docs/performance.md reports.
set -uo pipefail

cd "$(dirname "$0")/.."
DURATION="${SOAK_DURATION:-120s}"
WARMUP="${SOAK_WARMUP:-30s}"
CONCURRENCY="${SOAK_CONCURRENCY:-32}"
CACHE="${SOAK_CACHE:-20000}"
LOSS="${SOAK_LOSS:-0.02}"
BASE="${SOAK_PORT_BASE:-25350}"
DNS_PORT=$BASE
MILTER_PORT=$((BASE + 1))
METRICS_PORT=$((BASE + 2))

for port in "$DNS_PORT" "$MILTER_PORT" "$METRICS_PORT"; do
	if ss -Hltnu "sport = :$port" 2>/dev/null | grep -q .; then
		echo "port $port is in use: set SOAK_PORT_BASE" >&2
		exit 2
	fi
done

work=$(mktemp -d /tmp/rblmilter-soak-XXXXXX)
# Readable to all: started as root, rblmilter runs as nobody.
chmod 755 "$work"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> building"
go build -o "$work/rblmilter" ./cmd/rblmilter || exit 1
go build -o "$work/milterbench" ./cmd/milterbench || exit 1

"$work/milterbench" dns -listen "127.0.0.1:$DNS_PORT" -zones soak.test,lossy.test \
	-zone "lossy.test loss=$LOSS" >"$work/dns.log" 2>&1 &
pids+=($!)

cat >"$work/rblmilter.toml" <<EOF
listen = "inet:127.0.0.1:$MILTER_PORT"
resolvers = ["127.0.0.1:$DNS_PORT"]
timeout = "1s"
# milterbench's client addresses (198.18.0.0/15) are not skipped by default; be sure.
skip = []

[[list]]
zone = "soak.test"
filters = ["127.0.0.2"]
monitor = false

# Drops a share of queries: lookups that time out are part of the load.
[[list]]
zone = "lossy.test"
filters = ["127.0.0.2"]
timeout = "300ms"
monitor = false

[cache]
size = $CACHE

[log]
level = "warn"

[metrics]
listen = "127.0.0.1:$METRICS_PORT"
EOF
chmod 644 "$work/rblmilter.toml"

"$work/rblmilter" -config "$work/rblmilter.toml" >"$work/rblmilter.log" 2>&1 &
rbl_pid=$!
pids+=("$rbl_pid")
metrics="http://127.0.0.1:$METRICS_PORT/metrics"
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1 && break
	if ! kill -0 "$rbl_pid" 2>/dev/null; then
		echo "rblmilter exited:"
		cat "$work/rblmilter.log"
		exit 1
	fi
	sleep 0.1
done

# run PHASE DURATION OFFSET: one milterbench run, its JSON report in $work/PHASE.json.
run() {
	echo "==> $1: $2 at concurrency $CONCURRENCY"
	"$work/milterbench" run -socket "inet:127.0.0.1:$MILTER_PORT" -c "$CONCURRENCY" -duration "$2" \
		-offset "$3" -listed 0.1 -repeat 0.5 -pool 5000 \
		-metrics "$metrics" -metric rblmilter_cache_entries -metric rblmilter_cache_capacity \
		-metric process_open_fds -metric go_memstats_heap_inuse_bytes -settle 30s -json >"$work/$1.json"
}

fails=0
check() {
	if [ "$2" = 1 ]; then
		echo "PASS  $1"
	else
		echo "FAIL  $1"
		fails=$((fails + 1))
	fi
}

run warmup "$WARMUP" 0
check "warm-up: no failed session, right verdicts" $(($? == 0))
run soak "$DURATION" 10000000
check "soak: no failed session, right verdicts" $(($? == 0))

echo "==> results"
python3 - "$work/warmup.json" "$work/soak.json" "$CACHE" <<'EOF' || fails=$((fails + 1))
import json, sys

warm, soak = (json.load(open(p)) for p in sys.argv[1:3])
cache = int(sys.argv[3])
fails = 0

def check(name, ok):
    global fails
    print(("PASS  " if ok else "FAIL  ") + name)
    fails += not ok

def mib(b):
    return b / (1 << 20)

for name, r in (("warm-up", warm), ("soak", soak)):
    m = r["target_metrics"]
    check(f"{name}: goroutines back to idle ({m['before']['go_goroutines']:.0f} -> "
          f"{m['after']['go_goroutines']:.0f} -> {m['settled']['go_goroutines']:.0f})",
          m.get("settle_s") is not None)
    check(f"{name}: cache within its bound ({m['settled']['rblmilter_cache_entries']:.0f} <= {cache})",
          max(m["after"]["rblmilter_cache_entries"], m["settled"]["rblmilter_cache_entries"]) <= cache)
    check(f"{name}: open fds back to idle ({m['before']['process_open_fds']:.0f} -> "
          f"{m['after']['process_open_fds']:.0f} -> {m['settled']['process_open_fds']:.0f})",
          m["settled"]["process_open_fds"] <= m["before"]["process_open_fds"])

rss_warm = warm["target_metrics"]["settled"]["process_resident_memory_bytes"]
rss_soak = soak["target_metrics"]["settled"]["process_resident_memory_bytes"]
check(f"RSS does not grow with sessions ({mib(rss_warm):.1f} MiB after {warm['sessions']} sessions, "
      f"{mib(rss_soak):.1f} MiB after {warm['sessions'] + soak['sessions']})",
      rss_soak <= rss_warm * 1.2 + 8 * (1 << 20))

s = soak
m = s["target_metrics"]
print()
print("| measure | value |")
print("|---|---|")
print(f"| sessions (warm-up + measured) | {warm['sessions']} + {s['sessions']} in {warm['elapsed_s'] + s['elapsed_s']:.0f} s |")
print(f"| throughput (measured phase) | {s['sessions_per_s']:.0f} sessions/s at concurrency {s['concurrency']} |")
print(f"| failed sessions | {warm['errors'] + s['errors']} |")
print(f"| verdicts (measured phase) | {', '.join(f'{k} {v}' for k, v in sorted(s['verdicts'].items()))} |")
lat = s["decision_latency"]
print(f"| decision latency p50 / p99 / max | {lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} / {lat['max_ms']:.0f} ms |")
for key, label in (("go_goroutines", "goroutines"), ("process_open_fds", "open fds")):
    print(f"| {label}: idle, at the end of the run, settled | {warm['target_metrics']['before'][key]:.0f}, {m['after'][key]:.0f}, {m['settled'][key]:.0f} |")
print(f"| RSS: idle, after warm-up, after soak | {mib(warm['target_metrics']['before']['process_resident_memory_bytes']):.1f}, {mib(rss_warm):.1f}, {mib(rss_soak):.1f} MiB |")
print(f"| Go heap in use after soak | {mib(m['settled']['go_memstats_heap_inuse_bytes']):.1f} MiB |")
print(f"| cache entries / cache.size | {m['settled']['rblmilter_cache_entries']:.0f} / {cache} |")
sys.exit(1 if fails else 0)
EOF

if ! kill -0 "$rbl_pid" 2>/dev/null; then
	check "rblmilter still running" 0
fi
kill -TERM "$rbl_pid"
wait "$rbl_pid"
check "rblmilter exits 0 on SIGTERM after the soak" $(($? == 0))
if grep -q 'level=ERROR' "$work/rblmilter.log"; then
	check "no ERROR lines in rblmilter's log" 0
	grep 'level=ERROR' "$work/rblmilter.log" | head -5
fi

if [ $fails -gt 0 ]; then
	echo "soak FAILED ($fails checks)"
	exit 1
fi
echo "soak passed"
