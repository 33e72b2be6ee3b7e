#!/usr/bin/env bash
# Builds the Debian package of one rblmilter binary with dpkg-deb and prints its path.
#
#   scripts/deb.sh BINARY ARCH DEBVERSION MANDIR OUTDIR
#
# scripts/release.sh calls it: BINARY is a static release build for the Debian
# architecture ARCH, MANDIR holds rblmilter.8 and rblmilter.toml.5 from scripts/man.sh,
# and the package goes to OUTDIR/rblmilter_DEBVERSION_ARCH.deb. Everything in it comes
# from the repository, so nothing is written twice:
#
#   /usr/sbin/rblmilter                      BINARY
#   /etc/rblmilter/rblmilter.toml            contrib/rblmilter.toml (conffile; mode 0640
#                                            root:rblmilter through dpkg-statoverride)
#   /lib/systemd/system/rblmilter.service    contrib/systemd/rblmilter.service with the
#                                            package's binary and user (User=rblmilter
#                                            instead of DynamicUser=yes)
#   /usr/share/man/man8/rblmilter.8.gz, /usr/share/man/man5/rblmilter.toml.5.gz
#   /usr/share/doc/rblmilter/                copyright (with the license of every Go
#                                            module in the binary), changelog.gz (from
#                                            the git log), README.md, docs/, examples/
#                                            (contrib's MTA, supervisord, unbound and
#                                            Grafana files; paths set to the package's)
#   /usr/share/lintian/overrides/rblmilter   packaging/deb/lintian-overrides
#   DEBIAN/postinst, prerm, postrm           packaging/deb/ (postinst prints the
#                                            contrib/postfix/main.cf and Sendmail lines)
#
# Reproducible: file modes are set explicitly (umask 022), owners are root
# (--root-owner-group), every mtime is SOURCE_DATE_EPOCH (default: the commit's time),
# gzip stores no name or time, and xz runs single-threaded.
set -euo pipefail

if [ $# -ne 5 ]; then
	echo "usage: scripts/deb.sh BINARY ARCH DEBVERSION MANDIR OUTDIR" >&2
	exit 2
fi
# Paths are relative to where the script was started.
binary=$(realpath -- "$1") arch=$2 version=$3 mandir=$(realpath -- "$4") outdir=$(realpath -m -- "$5")
cd "$(dirname "$0")/.."
umask 022
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}"
export SOURCE_DATE_EPOCH
# The Maintainer field and changelog signature: the commit's committer unless set.
MAINTAINER="${RBLMILTER_MAINTAINER:-$(git log -1 --format='%cn <%ce>' HEAD)}"

fail() {
	echo "deb.sh: $*" >&2
	exit 1
}

# replace_once prints TEXT with the literal OLD replaced by NEW, and fails unless OLD
# occurs exactly once: a changed contrib file must not silently go into the package
# unadapted.
replace_once() {
	local what=$1 text=$2 old=$3 new=$4
	[[ $text == *"$old"* ]] || fail "$what: \"$old\" not found"
	[[ $text != *"$old"*"$old"* ]] || fail "$what: \"$old\" found more than once"
	printf '%s\n' "${text/"$old"/"$new"}"
}

# active_lines prints the lines of a config snippet that are not comments.
active_lines() {
	grep -vE '^[[:space:]]*(#|dnl( |$)|$)' "$1" | sed 's/)dnl$/)/'
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
doc="$root/usr/share/doc/rblmilter"

install -D -m 0755 "$binary" "$root/usr/sbin/rblmilter"
install -D -m 0644 contrib/rblmilter.toml "$root/etc/rblmilter/rblmilter.toml"

# contrib's comment block (how to install it by hand) gives way to the package's.
unit=$(<contrib/systemd/rblmilter.service)
unit=${unit#*$'\n\n'}
[[ $unit == "[Unit]"* ]] || fail "contrib/systemd/rblmilter.service no longer has one comment block, a blank line, then [Unit]"
unit="$(<packaging/deb/rblmilter.service.header)

$unit"
unit=$(replace_once "systemd unit" "$unit" "Documentation=https://" "Documentation=man:rblmilter(8) man:rblmilter.toml(5) https://")
unit=$(replace_once "systemd unit" "$unit" "ExecStart=/usr/local/bin/rblmilter " "ExecStart=/usr/sbin/rblmilter ")
unit=$(replace_once "systemd unit" "$unit" $'\nDynamicUser=yes\n' $'\nUser=rblmilter\nGroup=rblmilter\n')
# dpkg owns /etc/rblmilter; systemd must not create or re-mode it.
unit=$(replace_once "systemd unit" "$unit" $'ConfigurationDirectory=rblmilter\nConfigurationDirectoryMode=0750\n' "")
install -d -m 0755 "$root/lib/systemd/system"
printf '%s\n' "$unit" >"$root/lib/systemd/system/rblmilter.service"
chmod 0644 "$root/lib/systemd/system/rblmilter.service"

install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/man/man5"
gzip -9n <"$mandir/rblmilter.8" >"$root/usr/share/man/man8/rblmilter.8.gz"
gzip -9n <"$mandir/rblmilter.toml.5" >"$root/usr/share/man/man5/rblmilter.toml.5.gz"

install -d -m 0755 "$doc" "$doc/docs"
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/*.md "$doc/docs/"
for f in postfix/main.cf sendmail/rblmilter.mc unbound/rblmilter.conf grafana/rblmilter.json; do
	install -D -m 0644 "contrib/$f" "$doc/examples/$f"
done
replace_once "supervisord example" "$(<contrib/supervisord/rblmilter.conf)" \
	"command=/usr/local/bin/rblmilter " "command=/usr/sbin/rblmilter " >"$stage/supervisord.conf"
install -D -m 0644 "$stage/supervisord.conf" "$doc/examples/supervisord/rblmilter.conf"

# copyright: the project's notice, then every module linked into the binary with its
# license files, as the module cache holds them (go.sum verified).
{
	license="The repository has no LICENSE file yet: no license is stated for rblmilter itself."
	[ ! -f LICENSE ] || license="License:
$(sed 's/^/ /; s/^ $/ ./' LICENSE)"
	text=$(<packaging/deb/copyright)
	text=$(replace_once copyright "$text" "@LICENSE@" "$license")
	replace_once copyright "$text" "@GOVERSION@" "$(go env GOVERSION)"
	echo
	echo "Module: Go standard library and runtime"
	echo "License:"
	sed 's/^/ /; s/^ $/ ./' "$(go env GOROOT)/LICENSE"
	GOFLAGS= GOOS=linux GOARCH="$arch" CGO_ENABLED=0 go list -deps \
		-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/rblmilter |
		sort -u | while read -r path modversion dir; do
		echo
		echo "Module: $path $modversion"
		found=
		for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* "$dir"/NOTICE* "$dir"/PATENTS; do
			[ -f "$f" ] || continue
			found=1
			echo "$(basename "$f"):"
			# Debian ships the Apache License's text; the copyright file points to it.
			if grep -q 'Apache License' "$f" && grep -q 'Version 2.0, January 2004' "$f"; then
				echo " Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0"
			else
				sed 's/^/ /; s/^ $/ ./' "$f"
			fi
		done
		[ -n "$found" ] || fail "module $path $modversion has no license file in $dir"
	done
} >"$stage/copyright"
install -m 0644 "$stage/copyright" "$doc/copyright"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/rblmilter"

# changelog (native package: changelog.gz, Debian's format): this version and the
# commits since the previous tag.
{
	previous=$(git describe --tags --match 'v[0-9]*' --abbrev=0 HEAD^ 2>/dev/null || true)
	echo "rblmilter ($version) unstable; urgency=medium"
	echo
	built="Built from commit $(git rev-parse --short=12 HEAD)"
	[[ $version != *dirty ]] || built+=" with uncommitted changes"
	{
		echo "$built. Changes since ${previous:-the first commit}:"
		git log --no-merges --format='%s' ${previous:+"$previous..HEAD"}
	} | while IFS= read -r entry; do
		printf '%s\n' "$entry" | fold -s -w 72 | sed 's/[[:space:]]*$//; 1s/^/  * /; 2,$s/^/    /'
	done
	echo
	echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$stage/changelog"
gzip -9n <"$stage/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

install -d -m 0755 "$root/DEBIAN"
echo /etc/rblmilter/rblmilter.toml >"$root/DEBIAN/conffiles"
postinst=$(<packaging/deb/postinst)
postinst=$(replace_once postinst "$postinst" "@POSTFIX_LINES@" "$(active_lines contrib/postfix/main.cf | sed 's/^/    /')")
postinst=$(replace_once postinst "$postinst" "@SENDMAIL_LINE@" "$(active_lines contrib/sendmail/rblmilter.mc | grep '^INPUT_MAIL_FILTER' | sed 's/^/    /')")
printf '%s\n' "$postinst" >"$root/DEBIAN/postinst"
install -m 0755 packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
chmod 0755 "$root/DEBIAN/postinst"
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path ./etc/rblmilter/rblmilter.toml -printf '%P\n' |
	LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

# Installed-Size in KiB as dpkg-gencontrol counts it: each file rounded up, 1 for
# everything else. Independent of the file system the package is built on.
size=$(find "$root" ! -path "$root/DEBIAN*" -printf '%y %s\n' |
	awk '$1 == "f" { n += int(($2 + 1023) / 1024); next } { n++ } END { print n }')
control=$(<packaging/deb/control)
for kv in "@VERSION@=$version" "@ARCH@=$arch" "@MAINTAINER@=$MAINTAINER" "@INSTALLED_SIZE@=$size"; do
	control=$(replace_once control "$control" "${kv%%=*}" "${kv#*=}")
done
printf '%s\n' "$control" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$outdir"
deb="$outdir/rblmilter_${version}_${arch}.deb"
dpkg-deb --root-owner-group --threads-max=1 -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
