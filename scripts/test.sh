#!/usr/bin/env bash
# rblmilter's test command: the one the README names and .ci/run calls.
#
#   ./scripts/test.sh
#
# 1. Installs what the integration tests need when it is missing (as root, from Debian
#    packages): postfix, rbldnsd, supervisor, unbound, m4, iproute2, systemd (for
#    systemd-analyze), jq and curl (the benchmark scripts), and Sendmail's files. Sendmail cannot be installed beside Postfix
#    (the packages conflict), so sendmail-bin, sendmail-base and sendmail-cf are
#    downloaded and unpacked into /var/cache/rblmilter-test/sendmail
#    (RBLMILTER_SENDMAIL_ROOT overrides), never installed.
#    No service is started by the installation; the tests run private instances only.
# 2. gofmt check, go vet (with and without the integration build tag).
# 3. go test -race ./...                 (unit tests; they pass without any MTA)
# 4. go test -race -tags integration ./integration/...   (real Postfix, Sendmail, rbldnsd,
#    supervisord; they skip with a message where something is missing, and fail instead
#    when CI is set).
#
# Issue 7 (reliability) adds, as separate steps: staticcheck (fetched through the Go module
# proxy at a pinned version), and scripts/fuzz.sh (every fuzz target for FUZZTIME, default
# 20s). govulncheck is not run: its vulnerability database needs network access beyond the
# module proxy.
#
# Issue 14 (shipping) adds, as separate steps, on one release build (scripts/release.sh into a
# temporary RELEASE_DIR, removed at the end):
# - reproducibility: a second build, from a fresh clone of the commit (when the tree is clean)
#   with an empty Go build cache and another umask, must give byte-identical files;
# - bad input: release.sh refuses an unknown target and builds nothing; a tree with changes
#   builds as "-dirty";
# - man pages: groff and man render both pages of the package without a warning, and
#   rblmilter.toml(5) names every config key;
# - lintian: no errors; every warning, info and override tag is explained in docs/install.md;
# - the package installed like a user would (integration/package_test.go): dpkg -i, the
#   installed daemon under supervisord behind Postfix, dpkg -r, dpkg -P; the package is
#   purged and its system user deleted again at the end, so the machine is left as found.
# Issue 15 adds scripts/bench-postfix.sh -quick: the end-to-end benchmark against a real
# Postfix (every configuration starts, refuses the listed clients, delivers the clean ones;
# correctness only, no timing is judged). It needs root; without it the step is skipped, or
# fails when CI is set.
#
# Every step runs even when an earlier one failed; the exit status is 1 if any failed.
set -uo pipefail

cd "$(dirname "$0")/.."

SENDMAIL_ROOT="${RBLMILTER_SENDMAIL_ROOT:-/var/cache/rblmilter-test/sendmail}"
export RBLMILTER_SENDMAIL_ROOT="$SENDMAIL_ROOT"
# Debian's packages put daemons in sbin, which a non-login shell may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

failed=()
step() {
	local name="$1"
	shift
	local start=$SECONDS
	echo "==> $name"
	if "$@"; then
		echo "==> $name: ok ($((SECONDS - start))s)"
	else
		echo "==> $name: FAILED ($((SECONDS - start))s)"
		failed+=("$name")
	fi
}

# Debian packages the integration tests use, by the program that shows each is there.
declare -A PACKAGES=(
	[postfix]=postfix
	[rbldnsd]=rbldnsd
	[supervisord]=supervisor
	[m4]=m4
	[ip]=iproute2
	[unshare]=util-linux
	[unbound]=unbound
	[systemd-analyze]=systemd
	# Issue 14: building, checking and installing the package.
	[git]=git
	[go-md2man]=go-md2man
	[lintian]=lintian
	[man]=man-db
	[groff]=groff-base
	[adduser]=adduser
	[jq]=jq
	[curl]=curl
)
# Shared libraries the unpacked sendmail binary links against (ordinary packages that do
# not conflict with Postfix).
SENDMAIL_LIBS=(libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0)

missing_packages() {
	local prog
	for prog in "${!PACKAGES[@]}"; do
		command -v "$prog" >/dev/null 2>&1 || echo "${PACKAGES[$prog]}"
	done
	local lib
	for lib in "${SENDMAIL_LIBS[@]}"; do
		dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || echo "$lib"
	done
}

sendmail_present() {
	[ -x "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" ] && [ -f "$SENDMAIL_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]
}

# without_service_starts runs a command that installs packages with a standard policy-rc.d
# "deny" in place (one is put there for the time of the command where none is), so that no
# installed service starts.
without_service_starts() {
	local policy=/usr/sbin/policy-rc.d ours=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# installed by rblmilter scripts/test.sh while it installs packages\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	"$@"
	local rc=$?
	[ -n "$ours" ] && rm -f "$policy"
	return $rc
}

install_deps() {
	local pkgs
	pkgs=$(missing_packages | sort -u | tr '\n' ' ')
	if [ -z "$pkgs" ] && sendmail_present; then
		echo "everything the integration tests need is installed"
		return 0
	fi
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "The integration tests need: ${pkgs:-}${pkgs:+(Debian packages) }$(sendmail_present || echo "Sendmail files in $SENDMAIL_ROOT")"
		echo "Run this script as root on Debian to install them; without them the integration tests skip (or fail when CI is set)."
		return 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || return 1
	if [ -n "$pkgs" ]; then
		# Postfix without a system configuration: the tests run private instances.
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		# shellcheck disable=SC2086
		without_service_starts apt-get install -y -q --no-install-recommends $pkgs || return
	fi
	if ! sendmail_present; then
		local tmp
		tmp=$(mktemp -d) || return 1
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root sendmail-bin sendmail-base sendmail-cf) || {
			rm -rf "$tmp"
			return 1
		}
		rm -rf "$SENDMAIL_ROOT"
		mkdir -p "$SENDMAIL_ROOT"
		local deb
		for deb in "$tmp"/*.deb; do
			dpkg -x "$deb" "$SENDMAIL_ROOT" || {
				rm -rf "$tmp"
				return 1
			}
		done
		rm -rf "$tmp"
		echo "Sendmail unpacked into $SENDMAIL_ROOT"
	fi
	if ldd "$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail" | grep "not found"; then
		echo "the unpacked sendmail misses shared libraries (above)"
		return 1
	fi
}

gofmt_check() {
	local out
	out=$(gofmt -l .)
	if [ -n "$out" ]; then
		echo "gofmt needed on:"
		echo "$out"
		return 1
	fi
}

vet() {
	go vet ./... && go vet -tags integration ./integration/...
}

unit_tests() {
	go test -race ./...
}

integration_tests() {
	go test -race -count=1 -timeout 30m -tags integration ./integration/...
}

step "install integration test dependencies" install_deps
step "gofmt" gofmt_check
step "go vet" vet
step "unit tests (go test -race ./...)" unit_tests
step "integration tests (Postfix, Sendmail, rbldnsd, supervisord)" integration_tests

bench_postfix_quick() {
	if [ "$(id -u)" != 0 ]; then
		echo "scripts/bench-postfix.sh needs root (network namespace, Postfix): skipped"
		[ -z "${CI:-}" ]
		return
	fi
	local dir rc=0
	dir=$(mktemp -d /tmp/rblmilter-bench-postfix-quick.XXXXXX) || return 1
	BENCH_DIR=$dir ./scripts/bench-postfix.sh -quick || rc=$?
	[ $rc = 0 ] && rm -rf "$dir"
	return $rc
}
step "Postfix benchmark, correctness only (scripts/bench-postfix.sh -quick)" bench_postfix_quick

# --- issue 7: static analysis and fuzzing ---
STATICCHECK="honnef.co/go/tools/cmd/staticcheck@v0.8.2" # 2026.2.2, supports Go 1.26
step "staticcheck" bash -c "go run $STATICCHECK ./... && go run $STATICCHECK -tags integration ./integration/..."
step "fuzz (scripts/fuzz.sh, FUZZTIME=${FUZZTIME:-20s} per target)" ./scripts/fuzz.sh

# --- issue 14: release builds, man pages, the Debian package ---
RELEASE_TMP=$(mktemp -d)
trap 'rm -rf "$RELEASE_TMP"' EXIT
RELEASE_A="$RELEASE_TMP/a"

# clone_head clones the checked-out commit (not any changes to it) into $1.
clone_head() {
	git clone -q "$PWD" "$1" && git -C "$1" checkout -q --detach "$(git rev-parse HEAD)"
}

release_reproducible() {
	RELEASE_DIR="$RELEASE_A" ./scripts/release.sh || return
	local src=$PWD
	if [ -z "$(git status --porcelain)" ]; then
		clone_head "$RELEASE_TMP/clone" || return
		src="$RELEASE_TMP/clone"
	else
		echo "the tree has changes, so the second build runs here too, not in a clone"
	fi
	(umask 0027 && cd "$src" && GOCACHE="$RELEASE_TMP/gocache" RELEASE_DIR="$RELEASE_TMP/b" ./scripts/release.sh) || return
	diff -r "$RELEASE_A" "$RELEASE_TMP/b" || return
	echo "byte-identical in both builds: $(cd "$RELEASE_A" && echo *)"
}

release_bad_input() {
	local out rc
	out=$(RELEASE_DIR="$RELEASE_TMP/bad" ./scripts/release.sh linux/amd64 plan9/386 2>&1)
	rc=$?
	echo "release.sh linux/amd64 plan9/386: exit $rc: $out"
	if [ $rc != 2 ] || ! grep -qF 'unknown target "plan9/386": supported targets are linux/amd64 linux/arm64' <<<"$out" || [ -e "$RELEASE_TMP/bad" ]; then
		echo "want exit 2, a message naming the target and the supported ones, and nothing built"
		return 1
	fi
	local clone="$RELEASE_TMP/dirty" dist="$RELEASE_TMP/dirty-dist"
	clone_head "$clone" || return
	echo "// a change not committed" >>"$clone/cmd/rblmilter/main.go"
	(cd "$clone" && RELEASE_DIR="$dist" ./scripts/release.sh linux/amd64) || return
	local bin deb version
	bin=$(echo "$dist"/rblmilter_v*-dirty_linux_amd64)
	deb=$(echo "$dist"/rblmilter_*.dirty_amd64.deb)
	version=$("$bin" -version) || return
	echo "$version; package $(dpkg-deb -f "$deb" Version)"
	if [[ $version != *-dirty* || $(dpkg-deb -f "$deb" Version) != *dirty ]]; then
		echo "a build of a tree with changes must say -dirty in the binary's version and the package's"
		return 1
	fi
}

man_pages() {
	local x="$RELEASE_TMP/unpacked" page warnings ok=0
	dpkg-deb -x "$RELEASE_A"/rblmilter_*_amd64.deb "$x" || return
	for page in "$x"/usr/share/man/man8/rblmilter.8.gz "$x"/usr/share/man/man5/rblmilter.toml.5.gz; do
		warnings=$(
			zcat "$page" | groff -k -ww -wall -t -man -Tutf8 2>&1 >/dev/null
			LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null
		)
		if [ -n "$warnings" ]; then
			printf '%s:\n%s\n' "${page#"$x"}" "$warnings"
			ok=1
		fi
	done
	RBLMILTER_TOML_MANPAGE="$x/usr/share/man/man5/rblmilter.toml.5.gz" \
		go test -count=1 -run '^TestManPageDocumentsEveryKey$' -v ./cmd/rblmilter/ | tee "$RELEASE_TMP/manpage-test.out"
	grep -q -- '--- PASS: TestManPageDocumentsEveryKey' "$RELEASE_TMP/manpage-test.out" || ok=1
	return $ok
}

lintian_check() {
	local deb out tag ok=0
	for deb in "$RELEASE_A"/*.deb; do
		echo "lintian $(basename "$deb"):"
		lintian --allow-root --fail-on error "$deb" >/dev/null 2>&1 || {
			echo "lintian reports errors"
			ok=1
		}
		# Listed with the info and override tags (with --show-overrides, lintian's exit status
		# counts the overridden error again).
		out=$(lintian --allow-root --display-info --show-overrides "$deb" 2>&1)
		echo "$out"
		for tag in $(sed -nE 's/^[WIO]: [^ ]+: ([a-z0-9][a-z0-9.+-]*).*/\1/p' <<<"$out" | sort -u); do
			grep -qF -- "$tag" docs/install.md || {
				echo "lintian tag $tag is not explained in docs/install.md"
				ok=1
			}
		done
	done
	return $ok
}

package_install() {
	if [ "$(id -u)" != 0 ]; then
		echo "installing the package needs root"
		[ -z "${CI:-}" ]
		return
	fi
	local deb known rc
	deb=$(echo "$RELEASE_A/rblmilter_"*"_$(dpkg --print-architecture).deb")
	known=$(dpkg-query -W -f='${db:Status-Abbrev}' rblmilter 2>/dev/null)
	RBLMILTER_DEB="$deb" without_service_starts \
		go test -count=1 -timeout 10m -tags integration -run '^TestInstalledPackage$' ./integration/
	rc=$?
	# The test purges the package in its cleanup; should the test binary itself have died,
	# purge it here, unless it was there before.
	if [[ $known != ?[!n]* ]] && [[ $(dpkg-query -W -f='${db:Status-Abbrev}' rblmilter 2>/dev/null) == ?[!n]* ]]; then
		echo "the package is still installed after the test; purging it"
		dpkg -P rblmilter
		rc=1
	fi
	return $rc
}

step "release build, twice: byte-identical (scripts/release.sh)" release_reproducible
step "release.sh: unknown target refused, a tree with changes builds as -dirty" release_bad_input
step "man pages: no groff/man warnings, every config key in rblmilter.toml(5)" man_pages
step "lintian" lintian_check
step "Debian package: dpkg -i, installed daemon behind Postfix, dpkg -r, dpkg -P" package_install

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "all steps passed"
