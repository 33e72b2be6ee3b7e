# shellcheck shell=bash
# common.sh is what the benchmark scripts (bench.sh, bench-postfix.sh)
# share: running the processes they start, waiting for them with a
# deadline, and building the binaries they measure; and the end of their
# option loops. The sourcing script sets ROOT (the repository), OUT (its
# output directory) and log() before it starts anything, and calls
# stop_started from its EXIT trap.

PIDS=()

# help_or_unknown ARG is the end of a script's option loop: -h prints the
# script's head comment (its manual), anything else is a usage error.
help_or_unknown() {
	case "$1" in
	-h | -help | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	esac
	echo "$(basename "$0"): unknown argument $1 (try -h)" >&2
	exit 2
}

# start NAME CMD... runs CMD in the background, output to $OUT/NAME.log,
# and sets STARTED to its PID.
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	STARTED=$!
	PIDS+=("$STARTED")
}

# stop PID ends one process this script started.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# stop_started ends every process start began.
stop_started() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}

# poll SECONDS CMD... retries CMD every 0.1 s until it succeeds.
poll() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge "$deadline" ]; then
			return 1
		fi
		sleep 0.1
	done
}

# await PROBLEM LOG SECONDS CMD... polls CMD; when it never succeeds, it
# says PROBLEM with the end of LOG and ends the script.
await() {
	local problem=$1 logfile=$2
	shift 2
	poll "$@" && return
	log "$problem:"
	tail -n 40 "$logfile" >&2
	exit 1
}

# calc EXPR evaluates a jq arithmetic/boolean expression.
calc() { jq -n "$1"; }

# build_tools builds rblmilter and milterbench into $OUT/bin and sets RBL
# and MB to them.
build_tools() {
	log "building into $OUT/bin"
	(cd "$ROOT" && go build -o "$OUT/bin/" ./cmd/rblmilter ./cmd/milterbench)
	RBL=$OUT/bin/rblmilter
	MB=$OUT/bin/milterbench
}
