#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go file) for a bounded time.
#
#   ./scripts/fuzz.sh                  # each target for $FUZZTIME (default 20s)
#   FUZZTIME=5m ./scripts/fuzz.sh      # longer, before a release
#   ./scripts/fuzz.sh FuzzParseSocket  # only the named targets
#
# Inputs that fail are written by Go to PKG/testdata/fuzz/FuzzXxx/ and replayed by every
# plain `go test` from then on: fix the bug, then commit the file as a regression input.
# The seed corpus and those files run in the ordinary unit tests too; this script is the
# part that searches for new inputs. Exit status 1 if any target failed.
set -uo pipefail

cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-20s}"

# "dir name" for every fuzz target in the module.
targets() {
	grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' . |
		sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]+)\($|\1 \2|' | sort -u
}

failed=()
ran=0
while read -r dir name; do
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	ran=$((ran + 1))
	echo "==> fuzz $name (./$dir, $FUZZTIME)"
	corpus="./$dir/testdata/fuzz/$name"
	for attempt in 1 2; do
		before=$(ls "$corpus" 2>/dev/null)
		out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1)
		rc=$?
		echo "$out"
		[ $rc = 0 ] && break
		# Go's fuzzing engine sometimes ends a run that found nothing with a bare
		# "context deadline exceeded" when -fuzztime runs out while it is busy
		# between inputs: no failing input is written. Run such a target once
		# more; a real failure writes its input, and that is never retried.
		if [ $attempt = 1 ] && [ "$(ls "$corpus" 2>/dev/null)" = "$before" ] &&
			echo "$out" | grep -q "context deadline exceeded"; then
			echo "==> $name: the fuzzing engine timed out without a failing input; running it once more"
			continue
		fi
		failed+=("$name")
		echo "==> $name FAILED: the failing input is in $corpus/"
		break
	done
done < <(targets)

if [ "$ran" = 0 ]; then
	echo "no fuzz target matched: $*"
	exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz FAILED: ${failed[*]}"
	exit 1
fi
echo "all $ran fuzz targets passed ($FUZZTIME each)"
