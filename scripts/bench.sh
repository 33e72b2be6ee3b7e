#!/usr/bin/env bash
# bench.sh measures rblmilter against the performance targets of issues #6
# and #15, on loopback only, with the tools of this repository: `milterbench null`
# (the baseline milter), `milterbench dns` (generated DNSBL zones with a
# per-query delay) and `milterbench run` (the load generator).
#
#   P1  all-cache-hit workload with a real mix (30% listed clients, refused
#       with the default reply and its {txt}; 10% IPv6), at 8 and at 20
#       concurrent sessions: rblmilter throughput >= 0.95x the null
#       milter, session p99 <= 1.1x (inet and unix sockets)
#   P2  cold workload, 4 lists each answering after d = 5 ms, 20
#       concurrent sessions: decision p50 <= d + 1 ms
#   P3  one of 4 lists silent, per-list timeout 500 ms: decision p99
#       <= 510 ms; when another list fixes the verdict (listed client),
#       decision p50 <= d + 1 ms
#   P5  cache memory per cached answer (Go benchmark, 1M answers), with
#       the floor of golang-lru/v2 itself for the same number of answers
#   P6  1000 concurrent sessions from 10 IPs, 3 lists: exactly 30 queries
#       reach the DNS server (inet and unix)
#   S   steady state, 2000 concurrent sessions: no errors, goroutines back
#       to the idle count, live heap flat (inet and unix)
#   P7  the cost per message of results_header = true (every message
#       stamped, a forged copy deleted) against the connect-only
#       configuration, sessions driven to the end of a message, cache hits
#       (reported, no target)
#
# Ratios compare runs made on the same machine in the same minute, in
# alternating rounds (median of the per-round ratios), because a small
# shared machine is noisy; absolute numbers are printed for reference.
#
# Usage: scripts/bench.sh [-quick] [-profile] [-only P1,P2,...]
#   -quick    fewer and shorter rounds (a smoke test of the script)
#   -profile  also save CPU and allocation profiles of rblmilter during P1
#   -only     run only the named parts (P1 P2 P3 P5 P6 S P7)
# Environment:
#   BENCH_DIR    where binaries, configs, outputs and the summary go
#                (default: a new directory under /tmp)
#   BENCH_PORT   first of the loopback ports used (default 18800; it uses
#                the 60 ports from there)
#   BENCH_ROUNDS P1 rounds per socket type (default 5)
#   BENCH_SECS   seconds per measured run (default 3)
#   BENCH_CONC   concurrent sessions for the loaded P3 runs (default 8)
#   BENCH_P1_CONC concurrencies of P1 (default "8 20")
#   BENCH_P2_CONC concurrent sessions of the P2 target (default 20)
#   BENCH_LATCONC concurrent sessions for the P3 latency targets and the
#                P2 lookup path alone (default 2)
#
# Needs: go, jq, curl. Takes about 10 minutes. Writes $BENCH_DIR/summary.md;
# exit status 1 when a target is missed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$ROOT/scripts/lib/common.sh"
QUICK=0
PROFILE=0
ONLY="P1,P2,P3,P5,P6,S,P7"
while [ $# -gt 0 ]; do
	case "$1" in
	-quick) QUICK=1 ;;
	-profile) PROFILE=1 ;;
	-only)
		shift
		ONLY=${1:?-only needs a list like P1,P6}
		;;
	*) help_or_unknown "$1" ;;
	esac
	shift
done

for tool in go jq curl; do
	command -v "$tool" >/dev/null || {
		echo "bench.sh: $tool not found (Debian: apt-get install $tool)" >&2
		exit 2
	}
done

OUT=${BENCH_DIR:-$(mktemp -d /tmp/rblmilter-bench.XXXXXX)}
mkdir -p "$OUT"
rm -f "$OUT/failed"
PORT=${BENCH_PORT:-18800}
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-3}
CONC=${BENCH_CONC:-8}
P1CONC=${BENCH_P1_CONC:-8 20}
P2CONC=${BENCH_P2_CONC:-20}
LATCONC=${BENCH_LATCONC:-2}
if [ "$QUICK" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-2}
	SECS=${BENCH_SECS:-1}
fi
# 2000 concurrent sessions need a descriptor per session on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SUMMARY=$OUT/summary.md

log() { echo "bench: $*" >&2; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

trap stop_started EXIT
trap 'exit 130' INT TERM

# row adds a line to the summary table and prints it.
row() {
	echo "| $* |" >>"$SUMMARY"
	echo "| $* |" >&2
}

# verdict CONDITION -> PASS or FAIL. It runs in $(...), a subshell, so a
# failure is remembered in a file.
verdict() {
	if [ "$1" = 1 ]; then
		echo PASS
	else
		: >"$OUT/failed"
		echo FAIL
	fi
}

num() { jq -r "$1" "$2"; }
# median of numbers given as arguments.
median() { printf '%s\n' "$@" | jq -s 'sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end'; }
fmt() { printf "%.${2:-2}f" "$1"; }

build_tools

# Ports: DNS server, its stats, the null milter, rblmilter milter ports
# from PORT+10, their metrics ports from PORT+35.
DNS=127.0.0.1:$PORT
DNSSTATS=127.0.0.1:$((PORT + 1))
NULLPORT=$((PORT + 2))
MILTERPORT=$((PORT + 10))
METRICSPORT=$((PORT + 35))

# inet_sock sets SOCK to a fresh loopback milter address.
inet_sock() {
	SOCK=inet:127.0.0.1:$MILTERPORT
	MILTERPORT=$((MILTERPORT + 1))
}

# pressure prints the CPU pressure (share of time tasks waited for a CPU,
# last minute): other work on the machine skews every figure.
pressure() {
	if [ -r /proc/pressure/cpu ]; then
		awk '/^some/ { sub("avg60=", "", $3); printf ", CPU pressure %s%% (avg60)", $3 }' /proc/pressure/cpu
	fi
}

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
	echo "# rblmilter benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs ($CPU), $(uname -sr), $(go version | cut -d' ' -f3)"
	echo "- commit: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "- load at start: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(pressure)"
	echo "- rounds $ROUNDS x ${SECS}s, P1 concurrency $P1CONC, P2 $P2CONC, P3 $LATCONC and $CONC, outputs in $OUT"
	echo
	echo "| target | measured | goal | result |"
	echo "|---|---|---|---|"
} >"$SUMMARY"
sed -n 3,6p "$SUMMARY" >&2

# The test DNS server: zones for every part, each part with its own names
# so their counts do not mix.
#   h1-h3  instant answers (P1 cache-hit workload)
#   k1-k4  5 ms (P2, and k1-k3 for P3)
#   silent never answers (P3)
#   q1-q3  50 ms, long enough for 1000 sessions to overlap (P6)
#   s1-s3  5 ms (steady state)
#   r1-r3  instant answers (P7)
start dns "$MB" dns -listen "$DNS" -stats "$DNSSTATS" \
	-zones h1.test,h2.test,h3.test,k1.test,k2.test,k3.test,k4.test,silent.test,q1.test,q2.test,q3.test,s1.test,s2.test,s3.test,r1.test,r2.test,r3.test \
	-zone "k1.test delay=5ms" -zone "k2.test delay=5ms" -zone "k3.test delay=5ms" -zone "k4.test delay=5ms" \
	-zone "silent.test loss=1" \
	-zone "q1.test delay=50ms" -zone "q2.test delay=50ms" -zone "q3.test delay=50ms" \
	-zone "s1.test delay=5ms" -zone "s2.test delay=5ms" -zone "s3.test delay=5ms"
await "DNS server did not start" "$OUT/dns.log" 10 curl -sf "http://$DNSSTATS/stats"

# dns_stats prints the server's counters as JSON; with "reset", zeroes them.
dns_stats() { curl -sf "http://$DNSSTATS/stats${1:+?reset=1}"; }

# daemon NAME LISTEN CONFIG-LINES... writes $OUT/NAME.toml, starts
# rblmilter on LISTEN (inet:HOST:PORT or unix:PATH) and waits for /readyz.
# Sets DPID and METRICS (the metrics base URL).
daemon() {
	local name=$1 listen=$2
	shift 2
	local mport=$METRICSPORT
	METRICSPORT=$((METRICSPORT + 1))
	case $listen in unix:*) rm -f "${listen#unix:}" ;; esac
	{
		printf 'listen = "%s"\n' "$listen"
		printf 'resolvers = ["%s"]\n' "$DNS"
		printf '%s\n' "$@"
		printf '\n[metrics]\nlisten = "127.0.0.1:%d"\npprof = true\n' "$mport"
	} >"$OUT/$name.toml"
	"$RBL" -check-config -config "$OUT/$name.toml" >&2
	start "$name" "$RBL" -config "$OUT/$name.toml"
	DPID=$STARTED
	METRICS=http://127.0.0.1:$mport
	await "$name did not become ready" "$OUT/$name.log" 10 curl -sf "$METRICS/readyz"
}

# list_tables ZONE... renders [[list]] tables with monitor = false (the
# health monitor's probes would add queries to the counts) and any extra
# key=value lines from LISTKEYS.
list_tables() {
	local z
	for z in "$@"; do
		printf '\n[[list]]\nzone = "%s"\nmonitor = false\n%s\n' "$z" "${LISTKEYS:-}"
	done
}

# run LABEL ARGS... runs the load generator, output JSON in $OUT/LABEL.json.
# A run with errors is kept and reported, not fatal.
run() {
	local label=$1
	shift
	"$MB" run -json "$@" >"$OUT/$label.json" 2>"$OUT/$label.err" || true
	if [ ! -s "$OUT/$label.json" ]; then
		log "milterbench run $label failed:"
		cat "$OUT/$label.err" >&2
		exit 1
	fi
	local errs
	errs=$(num .errors "$OUT/$label.json")
	if [ "$errs" != 0 ]; then
		log "$label: $errs errors: $(num -c .error_kinds "$OUT/$label.json")"
	fi
}

#### P1: all cache hits, rblmilter vs the null milter ####
# The mix of issue #15: 30% of the clients listed (refused with the
# default reply, whose {txt} comes from the cached TXT record) and 10%
# IPv6, all from a warm pool of 1000 addresses.
P1MIX=(-repeat 1 -pool 1000 -listed 0.3 -ipv6 0.1 -warmup)
p1() {
	local kind=$1 nullsock rblsock
	case $kind in
	inet)
		nullsock=inet:127.0.0.1:$NULLPORT
		inet_sock
		rblsock=$SOCK
		;;
	unix)
		nullsock=unix:$OUT/null.sock
		rblsock=unix:$OUT/rbl-p1.sock
		rm -f "$OUT/null.sock"
		;;
	esac
	start "null-$kind" "$MB" null -listen "$nullsock"
	local npid=$STARTED
	# Three lists and the default reply ({txt}: TXT records are fetched
	# and cached too).
	daemon "p1-$kind" "$rblsock" "$(list_tables h1.test h2.test h3.test)"
	local rpid=$DPID rmetrics=$METRICS conc
	for conc in $P1CONC; do
		local common=(-duration "${SECS}s" -c "$conc" "${P1MIX[@]}")
		local tr=() pr=() nc=() rc=() nt=() rt=() np=() rp=() i first second
		for i in $(seq 1 "$ROUNDS"); do
			# Alternate who goes first, so that a drifting machine load
			# does not favour one side.
			if [ $((i % 2)) = 1 ]; then first=null second=rbl; else first=rbl second=null; fi
			for who in $first $second; do
				if [ "$who" = null ]; then
					run "p1-$kind-c$conc-null-$i" "${common[@]}" -pid "$npid" "$nullsock"
				else
					local prof=()
					if [ "$PROFILE" = 1 ] && [ "$i" = 1 ]; then
						prof=(-pprof "$rmetrics/debug/pprof/" -pprof-out "$OUT/p1-$kind-c$conc-cpu.pprof")
						curl -sf -o "$OUT/p1-$kind-c$conc-allocs-before.pprof" "$rmetrics/debug/pprof/allocs"
					fi
					run "p1-$kind-c$conc-rbl-$i" "${common[@]}" -pid "$rpid" "${prof[@]}" "$rblsock"
					if [ "${#prof[@]}" -gt 0 ]; then
						curl -sf -o "$OUT/p1-$kind-c$conc-allocs-after.pprof" "$rmetrics/debug/pprof/allocs"
					fi
				fi
			done
			local n=$OUT/p1-$kind-c$conc-null-$i.json r=$OUT/p1-$kind-c$conc-rbl-$i.json
			tr+=("$(calc "$(num .sessions_per_s "$r") / $(num .sessions_per_s "$n")")")
			pr+=("$(calc "$(num .session_latency.p99_ms "$r") / $(num .session_latency.p99_ms "$n")")")
			nt+=("$(num .sessions_per_s "$n")")
			rt+=("$(num .sessions_per_s "$r")")
			np+=("$(num .session_latency.p99_ms "$n")")
			rp+=("$(num .session_latency.p99_ms "$r")")
			nc+=("$(num .target_process.cpu_us_per_session "$n")")
			rc+=("$(num .target_process.cpu_us_per_session "$r")")
			log "P1 $kind c=$conc round $i: null ${nt[-1]}/s p99 ${np[-1]} ms, rblmilter ${rt[-1]}/s p99 ${rp[-1]} ms (load $(cut -d' ' -f1 /proc/loadavg))"
		done
		local tm pm
		tm=$(median "${tr[@]}")
		pm=$(median "${pr[@]}")
		row "P1 $kind c=$conc throughput rblmilter/null (median of $ROUNDS rounds; null $(fmt "$(median "${nt[@]}")" 0)/s, rblmilter $(fmt "$(median "${rt[@]}")" 0)/s) | $(fmt "$tm") | >= 0.95 | $(verdict "$(calc "if $tm >= 0.95 then 1 else 0 end")")"
		row "P1 $kind c=$conc session p99 rblmilter/null (null $(fmt "$(median "${np[@]}")") ms, rblmilter $(fmt "$(median "${rp[@]}")") ms) | $(fmt "$pm") | <= 1.1 | $(verdict "$(calc "if $pm <= 1.1 then 1 else 0 end")")"
		row "P1 $kind c=$conc server CPU per session, null / rblmilter (median) | $(fmt "$(median "${nc[@]}")" 1) / $(fmt "$(median "${rc[@]}")" 1) µs | (explains the ratio) | info"
	done
	stop "$npid"
	stop "$rpid"
}

# hit_queries: how many DNS queries the cache-hit workload caused after
# its warm-up (expected: none).
if want P1; then
	dns_stats reset >/dev/null
	p1 inet
	p1 unix
	hq=$(dns_stats | jq '[.zones["h1.test","h2.test","h3.test"].queries] | add')
	# Each daemon's first warm-up asks each pooled address once: 1000
	# clients x 3 lists, plus a TXT query per list for the 300 listed ones;
	# every later run is cache hits only.
	row "P1 DNS queries during the cache-hit runs (2 daemons; first warm-up 1000 clients x 3 lists + TXT for 300 listed) | $hq | $((2 * (3000 + 900))) (warm-up only) | $(verdict "$(calc "if $hq == $((2 * 3900)) then 1 else 0 end")")"
fi

#### P2: cold, 4 lists, d = 5 ms ####
# The target is judged at P2CONC concurrent sessions, where a 2-core
# machine also runs the load generator and the DNS server; at LATCONC
# the lookup path alone is shown for information.
if want P2; then
	inet_sock
	sock=$SOCK
	daemon p2 "$sock" "$(list_tables k1.test k2.test k3.test k4.test)"
	dns_stats reset >/dev/null
	run p2-cold -duration "$((SECS * 2))s" -c "$P2CONC" -repeat 0 -listed 0.1 -pid "$DPID" "$sock"
	q=$(dns_stats reset | jq '[.zones["k1.test","k2.test","k3.test","k4.test"].queries] | add')
	s=$(num .sessions "$OUT/p2-cold.json")
	p50=$(num .decision_latency.p50_ms "$OUT/p2-cold.json")
	row "P2 cold decision p50, 4 lists x 5 ms, 10% listed, $P2CONC concurrent ($(fmt "$(num .sessions_per_s "$OUT/p2-cold.json")" 0) sessions/s; p90 $(fmt "$(num .decision_latency.p90_ms "$OUT/p2-cold.json")") ms, p99 $(fmt "$(num .decision_latency.p99_ms "$OUT/p2-cold.json")") ms; load $(cut -d' ' -f1 /proc/loadavg)) | $(fmt "$p50") ms | <= 6 ms | $(verdict "$(calc "if $p50 <= 6 then 1 else 0 end")")"
	row "P2 DNS queries per cold session (4 A + TXT for listed clients); rblmilter CPU per cold session | $(fmt "$(calc "$q / $s")"); $(fmt "$(num .target_process.cpu_us_per_session "$OUT/p2-cold.json")" 0) µs | 4 + 4 x 0.1 | info"
	# What d = 5 ms costs any client of this DNS server: four zones asked
	# in parallel by a plain miekg/dns client (the timer's lateness, the
	# server's work, the UDP exchange come on top of d).
	(cd "$ROOT" && go test -run '^$' -bench '^BenchmarkDelayedAnswers$' -benchtime 400x ./cmd/milterbench) >"$OUT/p2-dns.txt" 2>&1 || {
		log "P2: BenchmarkDelayedAnswers failed:"
		cat "$OUT/p2-dns.txt" >&2
		exit 1
	}
	rtt=$(awk '/^BenchmarkDelayedAnswers/ { for (i = 1; i < NF; i++) if ($(i+1) == "p50-ms") print $i }' "$OUT/p2-dns.txt")
	run p2-cold-alone -duration "$((SECS * 2))s" -c "$LATCONC" -repeat 0 -listed 0.1 -offset 10000 "$sock"
	row "P2 cold decision p50 at $LATCONC concurrent, the lookup path alone ($(fmt "$(num .sessions_per_s "$OUT/p2-cold-alone.json")" 0) sessions/s; p99 $(fmt "$(num .decision_latency.p99_ms "$OUT/p2-cold-alone.json")") ms) | $(fmt "$(num .decision_latency.p50_ms "$OUT/p2-cold-alone.json")") ms | (info) | info"
	alone=$(num .decision_latency.p50_ms "$OUT/p2-cold-alone.json")
	row "P2 the DNS server's own round trip, 4 zones at d = 5 ms asked in parallel by a plain miekg/dns client, p50 (BenchmarkDelayedAnswers); the decision p50 over it at $P2CONC and at $LATCONC concurrent | $(fmt "$rtt") ms; +$(fmt "$(calc "$p50 - $rtt")") ms, +$(fmt "$(calc "$alone - $rtt")") ms | (info) | info"
	# A listed client: its A answer decides at once, but the reply's {txt}
	# needs the TXT record, a second round trip.
	run p2-listed -duration "${SECS}s" -c "$LATCONC" -repeat 0 -listed 1 -offset 20000 "$sock"
	row "P2 cold decision p50 of listed clients (A, then TXT for the reply's {txt}) | $(fmt "$(num .decision_latency.p50_ms "$OUT/p2-listed.json")") ms | (2 x d expected) | info"
	stop "$DPID"
fi

#### P3: one of 4 lists silent, per-list timeout 500 ms ####
if want P3; then
	inet_sock
	sock=$SOCK
	daemon p3 "$sock" "$(LISTKEYS='timeout = "500ms"' list_tables k1.test k2.test k3.test silent.test)"
	# Clean clients: nothing decides before the silent list times out;
	# 50 concurrent sessions give a p99 over enough of them.
	run p3-clean -duration "$((SECS * 2))s" -c 50 -repeat 0 -listed 0 "$sock"
	p99=$(num .decision_latency.p99_ms "$OUT/p3-clean.json")
	row "P3 decision p99 with a silent list, clean clients, 50 concurrent (p50 $(fmt "$(num .decision_latency.p50_ms "$OUT/p3-clean.json")") ms, max $(fmt "$(num .decision_latency.max_ms "$OUT/p3-clean.json")") ms, $(num .sessions "$OUT/p3-clean.json") sessions) | $(fmt "$p99") ms | <= 510 ms | $(verdict "$(calc "if $p99 <= 510 then 1 else 0 end")")"
	# Listed clients: the first listing fixes the verdict (early).
	run p3-listed -duration "${SECS}s" -c "$LATCONC" -repeat 0 -listed 1 "$sock"
	p50=$(num .decision_latency.p50_ms "$OUT/p3-listed.json")
	row "P3 early decision p50, listed clients, default reply with {txt}: the TXT record is fetched before replying | $(fmt "$p50") ms | <= 6 ms | $(verdict "$(calc "if $p50 <= 6 then 1 else 0 end")")"
	stop "$DPID"
	# The same without {txt} in the reply: no TXT round trip.
	inet_sock
	sock=$SOCK
	daemon p3-notxt "$sock" 'reply = "554 5.7.1 Service unavailable; Client host [{ip}] blocked using {list}"' "$(LISTKEYS='timeout = "500ms"' list_tables k1.test k2.test k3.test silent.test)"
	run p3-listed-notxt -duration "${SECS}s" -c "$LATCONC" -repeat 0 -listed 1 "$sock"
	p50=$(num .decision_latency.p50_ms "$OUT/p3-listed-notxt.json")
	row "P3 early decision p50, listed clients, reply without {txt} (p99 $(fmt "$(num .decision_latency.p99_ms "$OUT/p3-listed-notxt.json")") ms) | $(fmt "$p50") ms | <= 6 ms | $(verdict "$(calc "if $p50 <= 6 then 1 else 0 end")")"
	run p3-listed-notxt-load -duration "${SECS}s" -c "$CONC" -repeat 0 -listed 1 -offset 20000 "$sock"
	row "P3 early decision p50 without {txt} at $CONC concurrent (p99 $(fmt "$(num .decision_latency.p99_ms "$OUT/p3-listed-notxt-load.json")") ms) | $(fmt "$(num .decision_latency.p50_ms "$OUT/p3-listed-notxt-load.json")") ms | (load) | info"
	stop "$DPID"
fi

#### P5: cache bytes per answer ####
if want P5; then
	log "P5: go test -bench BenchmarkCacheBytesPerAnswer ./rbl"
	(cd "$ROOT" && go test -run '^$' -bench '^BenchmarkCacheBytesPerAnswer$' -benchtime 1x ./rbl) >"$OUT/p5.txt" 2>&1 || {
		cat "$OUT/p5.txt" >&2
		exit 1
	}
	for fam in ipv4 ipv6; do
		line=$(grep "BenchmarkCacheBytesPerAnswer/$fam" "$OUT/p5.txt")
		heap=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "heap-bytes/answer") print $i}')
		rss=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "rss-bytes/answer") print $i}')
		row "P5 cache bytes per answer, 1M $fam answers: heap (RSS $(fmt "${rss:-0}" 0)) | $(fmt "$heap" 0) B | <= 128 B | $(verdict "$(calc "if $heap <= 128 then 1 else 0 end")")"
	done
	(cd "$ROOT" && go test -run '^$' -bench '^BenchmarkCacheFloorPerAnswer$' -benchtime 1x ./rbl) >"$OUT/p5-floor.txt" 2>&1 || {
		cat "$OUT/p5-floor.txt" >&2
		exit 1
	}
	floor=$(awk '/BenchmarkCacheFloorPerAnswer\// { for (i = 1; i < NF; i++) if ($(i+1) == "heap-bytes/answer") { sub(/^BenchmarkCacheFloorPerAnswer\//, "", $1); sub(/-[0-9]+$/, "", $1); printf "%s%s %.0f B", sep, $1, $i; sep = "; " } }' "$OUT/p5-floor.txt")
	row "P5 floor: golang-lru/v2 alone with the smallest keys and values, 1M answers ($floor) | - | (floor) | info"
fi

#### P6: 1000 concurrent sessions, 10 client IPs, 3 lists ####
if want P6; then
	for kind in inet unix; do
		if [ "$kind" = inet ]; then inet_sock; sock=$SOCK; else sock=unix:$OUT/rbl-p6.sock; fi
		daemon "p6-$kind" "$sock" "$(list_tables q1.test q2.test q3.test)"
		dns_stats reset >/dev/null
		run "p6-$kind" -n 1000 -c 1000 -repeat 1 -pool 10 -listed 0 "$sock"
		q=$(dns_stats reset | jq '[.zones["q1.test","q2.test","q3.test"].queries] | add')
		e=$(num .errors "$OUT/p6-$kind.json")
		row "P6 $kind: DNS queries for 1000 concurrent sessions from 10 IPs, 3 lists x 50 ms ($(num .sessions "$OUT/p6-$kind.json") sessions, $e errors) | $q | 30 | $(verdict "$(calc "if $q == 30 and $e == 0 then 1 else 0 end")")"
		stop "$DPID"
	done
fi

#### S: steady state with 2000 concurrent sessions ####
# metric NAME prints one series of the daemon's /metrics.
metric() { curl -sf "$METRICS/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
if want S; then
	for kind in inet unix; do
		if [ "$kind" = inet ]; then inet_sock; sock=$SOCK; else sock=unix:$OUT/rbl-s.sock; fi
		# A cache the first round fills: later rounds then hold the same
		# amount of live data, so any growth would be a leak.
		daemon "s-$kind" "$sock" "$(list_tables s1.test s2.test s3.test)" "$(printf '\n[cache]\nsize = 20000')"
		curl -sf -o /dev/null "$METRICS/debug/pprof/heap?gc=1"
		rss0=$(metric process_resident_memory_bytes)
		heap0=$(metric go_memstats_heap_alloc_bytes)
		gor0=$(metric go_goroutines)
		# Rounds of 2000 concurrent sessions (half of them repeat clients,
		# 10% listed): one to fill the cache, then three measured. After
		# each, the goroutines must come back to the idle count; then a
		# forced GC (pprof's heap?gc=1, what the runtime does by itself
		# every 2 minutes) shows the live heap, which must stay flat.
		# RSS is only reported: Go keeps freed memory until its
		# scavenger returns it to the system, over minutes, so RSS after
		# a burst depends on when that last ran.
		errs=0 settled=1 gor=() heap=() rss=() peak=()
		for i in 0 1 2 3; do
			run "s-$kind-$i" -duration "$((SECS * 3))s" -c 2000 -repeat 0.5 -listed 0.1 -offset "$((i * 15000))" \
				-metrics "$METRICS/metrics" -settle 30s -timeout 20s "$sock"
			f=$OUT/s-$kind-$i.json
			errs=$((errs + $(num .errors "$f")))
			if [ "$i" = 0 ]; then
				log "S $kind fill round: $(num .sessions "$f") sessions, $(num .errors "$f") errors"
				continue
			fi
			if [ "$(num '.target_metrics.settle_s // "none"' "$f")" = none ]; then settled=0; fi
			curl -sf -o /dev/null "$METRICS/debug/pprof/heap?gc=1"
			gor+=("$(num '.target_metrics.after.go_goroutines' "$f")->$(metric go_goroutines)")
			peak+=("$(num '.target_metrics.after.process_resident_memory_bytes / 1048576 | floor' "$f")")
			heap+=("$(calc "$(metric go_memstats_heap_alloc_bytes) / 1048576 | . * 10 | floor / 10")")
			rss+=("$(calc "$(metric process_resident_memory_bytes) / 1048576 | floor")")
			log "S $kind round $i: $(num .sessions "$f") sessions, $(num .errors "$f") errors, goroutines ${gor[-1]} (idle $gor0), live heap ${heap[-1]} MiB, RSS ${rss[-1]} MiB"
		done
		ok=$(calc "if $errs == 0 and $settled == 1 and ${heap[2]} <= ${heap[0]} * 1.1 + 1 then 1 else 0 end")
		row "S $kind: 4 rounds of $((SECS * 3)) s at 2000 concurrent sessions, the first fills the cache ($(num .sessions "$OUT/s-$kind-3.json") sessions in the last); goroutines at the end of rounds 1-3 -> settled: ${gor[*]} (idle $gor0); live heap after GC, MiB: $(calc "$heap0 / 1048576 | . * 10 | floor / 10") idle, ${heap[*]}; RSS after GC, MiB: $(calc "$rss0 / 1048576 | floor") idle, ${rss[*]} (at the end of each round: ${peak[*]}) | $errs errors | 0 errors; goroutines back to idle; live heap flat (+10%); RSS reported | $(verdict "$ok")"
		stop "$DPID"
	done
fi

#### P7: results_header = true against the connect-only configuration ####
# Both daemons get the same sessions, driven as Postfix would to the end of
# a message (each with a forged X-RBL to delete): the connect-only daemon
# answers ACCEPT at connect and is asked nothing more; the stamping one is
# sent the message's headers and its end, where it deletes the forged
# copy and adds its header. Cache hits, 10% listed clients (listed on all
# three lists: score 3, below threshold = 4, so nobody is refused; with
# tag_threshold = 1 they are the stamping daemon's tag level), alternating
# rounds, median of the per-round ratios.
if want P7; then
	inet_sock
	plain=$SOCK
	daemon p7-plain "$plain" 'threshold = 4' "$(list_tables r1.test r2.test r3.test)"
	ppid=$DPID
	inet_sock
	stamped=$SOCK
	daemon p7-stamped "$stamped" 'threshold = 4' 'tag_threshold = 1' 'results_header = true' "$(list_tables r1.test r2.test r3.test)"
	spid=$DPID
	common=(-duration "${SECS}s" -c "$CONC" -repeat 1 -pool 1000 -listed 0.1 -warmup -stage eom -header "X-RBL: score=-100")
	tr=() pr=() pt=() st=() pp=() sp=() pc=() sc=()
	for i in $(seq 1 "$ROUNDS"); do
		if [ $((i % 2)) = 1 ]; then order="plain stamped"; else order="stamped plain"; fi
		for who in $order; do
			if [ "$who" = plain ]; then
				run "p7-plain-$i" "${common[@]}" -pid "$ppid" "$plain"
			else
				run "p7-stamped-$i" "${common[@]}" -pid "$spid" "$stamped"
			fi
		done
		p=$OUT/p7-plain-$i.json s=$OUT/p7-stamped-$i.json
		tr+=("$(calc "$(num .sessions_per_s "$s") / $(num .sessions_per_s "$p")")")
		pr+=("$(calc "$(num .session_latency.p99_ms "$s") / $(num .session_latency.p99_ms "$p")")")
		pt+=("$(num .sessions_per_s "$p")") st+=("$(num .sessions_per_s "$s")")
		pp+=("$(num .session_latency.p99_ms "$p")") sp+=("$(num .session_latency.p99_ms "$s")")
		pc+=("$(num .target_process.cpu_us_per_session "$p")") sc+=("$(num .target_process.cpu_us_per_session "$s")")
		log "P7 round $i: connect-only ${pt[-1]}/s p99 ${pp[-1]} ms, results_header ${st[-1]}/s p99 ${sp[-1]} ms, modifications $(num -c '.modifications // {}' "$s")"
	done
	last=$OUT/p7-stamped-$ROUNDS.json
	mods=$(num '(.modifications["add header"] // 0) == .sessions and (.modifications["delete header"] // 0) == .sessions' "$last")
	row "P7 results_header = true / connect-only, sessions to end of message: throughput (median of $ROUNDS rounds; connect-only $(fmt "$(median "${pt[@]}")" 0)/s, results_header $(fmt "$(median "${st[@]}")" 0)/s) | $(fmt "$(median "${tr[@]}")") | (cost reported) | info"
	row "P7 the same, session p99 (connect-only $(fmt "$(median "${pp[@]}")") ms, results_header $(fmt "$(median "${sp[@]}")") ms) | $(fmt "$(median "${pr[@]}")") | (cost reported) | info"
	row "P7 rblmilter CPU per session, connect-only / results_header (every message: forged copy deleted, header added: $mods) | $(fmt "$(median "${pc[@]}")" 1) / $(fmt "$(median "${sc[@]}")" 1) µs | (cost reported) | $(verdict "$(calc "if $mods then 1 else 0 end")")"
	stop "$ppid"
	stop "$spid"
fi

printf "\n" >>"$SUMMARY"
echo "- load at end: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(pressure)" >>"$SUMMARY"
echo >&2
cat "$SUMMARY"
[ ! -e "$OUT/failed" ]
