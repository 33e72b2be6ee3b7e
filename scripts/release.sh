#!/usr/bin/env bash
# Release build of the checked-out commit: static binaries, Debian packages, SHA256SUMS.
#
#   ./scripts/release.sh                   # every supported target
#   ./scripts/release.sh linux/amd64       # only the named targets
#   RELEASE_DIR=/tmp/out ./scripts/release.sh
#
# Writes into $RELEASE_DIR (default: dist/ in the repository):
#   rblmilter_VERSION_linux_amd64, rblmilter_VERSION_linux_arm64   static binaries
#   rblmilter_DEBVERSION_amd64.deb, rblmilter_DEBVERSION_arm64.deb  Debian packages (scripts/deb.sh)
#   SHA256SUMS                                                       of the files above
#
# VERSION is `git describe` of the newest v* tag (v0.0.0 before the first tag): v1.2.0 on the
# tag, v1.2.0-7-g0123456789ab seven commits later. A tree with changes (untracked files
# included, as Go counts them) appends "-dirty", so a build of uncommitted code says so in
# `rblmilter -version`, in the file names and in the package version. DEBVERSION is the
# same in Debian's syntax: 1.2.0, 1.2.0+7.g0123456789ab, 1.2.0+7.g0123456789ab.dirty (a
# v1.2.0-rc.1 tag becomes 1.2.0~rc.1, which sorts before 1.2.0).
#
# Reproducible: CGO_ENABLED=0, -trimpath, no VCS stamping by Go (the version and revision
# are stamped explicitly, so a clone and a git worktree of one commit build the same
# bytes), GOFLAGS and GOAMD64/GOARM64 fixed, and every timestamp in the packages set to
# SOURCE_DATE_EPOCH (default: the commit's time). Two builds of one commit with the same
# Go toolchain are byte-identical; scripts/test.sh checks it.
#
# Needs git, go, go-md2man (Debian package go-md2man), dpkg-deb and gzip.
set -euo pipefail

# A relative RELEASE_DIR is relative to where the script was started.
[ -z "${RELEASE_DIR:-}" ] || RELEASE_DIR=$(realpath -m -- "$RELEASE_DIR")
cd "$(dirname "$0")/.."

SUPPORTED_TARGETS=(linux/amd64 linux/arm64)

die() {
	echo "release.sh: $*" >&2
	exit 2
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${SUPPORTED_TARGETS[@]}")
for t in "${targets[@]}"; do
	printf '%s\n' "${SUPPORTED_TARGETS[@]}" | grep -qxF -- "$t" ||
		die "unknown target \"$t\": supported targets are ${SUPPORTED_TARGETS[*]} (GOOS/GOARCH)"
done

# Each tool, with the Debian package that has it.
for tool in git:git go:golang go-md2man:go-md2man dpkg-deb:dpkg gzip:gzip sha256sum:coreutils; do
	command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (Debian package ${tool#*:})"
done
git rev-parse --verify -q HEAD >/dev/null || die "not in a git checkout with a commit: the version comes from git"

# git_version prints VERSION as described above.
git_version() {
	local v
	if ! v=$(git describe --tags --match 'v[0-9]*' --abbrev=12 2>/dev/null); then
		v="v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short=12 HEAD)"
	fi
	[ -z "$(git status --porcelain)" ] || v+="-dirty"
	echo "$v"
}

# deb_version turns VERSION into a Debian (native) package version.
deb_version() {
	local v="$1" extra="" dirty=""
	if [[ $v == *-dirty ]]; then
		dirty=1
		v=${v%-dirty}
	fi
	if [[ $v =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}
		extra="+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
	fi
	v=${v#v}
	v=${v//-/\~}
	if [ -n "$dirty" ]; then
		extra="${extra:-+}${extra:+.}dirty"
	fi
	echo "$v$extra"
}

VERSION=$(git_version)
DEBVERSION=$(deb_version "$VERSION")
dpkg --validate-version "$DEBVERSION" || die "version $VERSION gives the invalid Debian version $DEBVERSION"
REVISION=$(git rev-parse --short=12 HEAD)
[[ $VERSION == *-dirty ]] && REVISION+="-dirty"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}"
export SOURCE_DATE_EPOCH

RELEASE_DIR="${RELEASE_DIR:-dist}"
mkdir -p "$RELEASE_DIR"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

echo "rblmilter $VERSION (package $DEBVERSION, revision $REVISION, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH, $(go env GOVERSION))"

date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
./scripts/man.sh "$build/man" "$VERSION" "$date"

outputs=()
for t in "${targets[@]}"; do
	goos=${t%/*}
	goarch=${t#*/}
	bin="rblmilter_${VERSION}_${goos}_${goarch}"
	echo "==> $bin"
	GOFLAGS= CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOAMD64=v1 GOARM64=v8.0 \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
		-o "$RELEASE_DIR/$bin" ./cmd/rblmilter
	outputs+=("$bin")
	# Debian's architecture names are Go's for these targets.
	deb=$(./scripts/deb.sh "$RELEASE_DIR/$bin" "$goarch" "$DEBVERSION" "$build/man" "$RELEASE_DIR")
	outputs+=("$(basename "$deb")")
done

(cd "$RELEASE_DIR" && sha256sum -- "${outputs[@]}") >"$RELEASE_DIR/SHA256SUMS"
echo "==> $RELEASE_DIR/SHA256SUMS"
cat "$RELEASE_DIR/SHA256SUMS"
