#!/usr/bin/env bash
# rblmilter's test command: the one the README names and .ci/run calls.
#
#   ./scripts/test.sh
#
# 1. Installs what the integration tests need when it is missing (as root, from Debian
#    packages): postfix, rbldnsd, supervisor, unbound, m4, iproute2, systemd (for
#    systemd-analyze), and Sendmail's files. Sendmail cannot be installed beside Postfix
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
		# Keep every installed service from starting (standard policy-rc.d "deny").
		local policy=/usr/sbin/policy-rc.d ours=""
		if [ ! -e "$policy" ]; then
			printf '#!/bin/sh\n# installed by rblmilter scripts/test.sh while it installs packages\nexit 101\n' >"$policy"
			chmod 755 "$policy"
			ours=1
		fi
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $pkgs
		local rc=$?
		[ -n "$ours" ] && rm -f "$policy"
		[ $rc = 0 ] || return $rc
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

# --- issue 7: static analysis and fuzzing ---
STATICCHECK="honnef.co/go/tools/cmd/staticcheck@v0.8.2" # 2026.2.2, supports Go 1.26
step "staticcheck" bash -c "go run $STATICCHECK ./... && go run $STATICCHECK -tags integration ./integration/..."
step "fuzz (scripts/fuzz.sh, FUZZTIME=${FUZZTIME:-20s} per target)" ./scripts/fuzz.sh

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "all steps passed"
