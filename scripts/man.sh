#!/usr/bin/env bash
# Renders the man pages from the docs with go-md2man (Debian package go-md2man), so the
# pages and the docs never disagree:
#
#   scripts/man.sh OUTDIR VERSION DATE
#
#   OUTDIR/rblmilter.8        docs/rblmilter.8.md (the command-line reference)
#   OUTDIR/rblmilter.toml.5   docs/configuration.md, behind a NAME/SYNOPSIS/DESCRIPTION
#                             header and followed by FILES and SEE ALSO
#
# Before rendering, each page loses its first-level title (the man header replaces it; in
# rblmilter.8.md the paragraph under it, which says what the page is for, goes too) and
# every other heading moves up a level (## becomes the man page's sections, ### their
# subsections); tables become tagged paragraphs — the first column the tag, the others
# "Header: value", a last column called Meaning plain text — because Debian 12's
# go-md2man renders wide tables wider than a terminal; and links to other docs keep their
# text only. scripts/release.sh calls this; scripts/test.sh checks that groff and man
# render both pages without a warning and that the toml(5) page names every config key.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ $# -ne 3 ]; then
	echo "usage: scripts/man.sh OUTDIR VERSION DATE" >&2
	exit 2
fi
outdir=$1 version=$2 date=$3
command -v go-md2man >/dev/null || {
	echo "man.sh: go-md2man not found (Debian package go-md2man)" >&2
	exit 1
}
mkdir -p "$outdir"

# for_man prints a markdown doc prepared for go-md2man as described above; with "droplead"
# as its second argument, without the text between the title and the first section.
for_man() {
	awk -v droplead="${2:-}" '
	function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
	# cells splits a table row; \| inside a cell is a literal bar.
	function cells(line, out,   n, i) {
		gsub(/\\\|/, "\001", line)
		sub(/^[ \t]*\|/, "", line)
		sub(/\|[ \t]*$/, "", line)
		n = split(line, out, "|")
		for (i = 1; i <= n; i++) {
			out[i] = trim(out[i])
			gsub(/\001/, "|", out[i])
		}
		return n
	}
	# unlink drops the target of links that are not absolute URLs.
	function unlink(s,   out, m) {
		out = ""
		while (match(s, /\[[^]]*\]\([^)]*\)/)) {
			m = substr(s, RSTART, RLENGTH)
			if (m ~ /\]\((https?|mailto):/) out = out substr(s, 1, RSTART + RLENGTH - 1)
			else out = out substr(s, 1, RSTART - 1) substr(m, 2, index(m, "](") - 2)
			s = substr(s, RSTART + RLENGTH)
		}
		return out s
	}
	/^```/ { fence = !fence; table = 0; print; next }
	fence { print; next }
	!titled && /^# / { titled = 1; lead = droplead == "droplead"; next }
	/^#+ / { table = 0; lead = 0; print substr($0, 2); next }
	lead { next }
	/^[ \t]*\|/ {
		if (!table) {
			header = $0
			if ((getline sep) <= 0 || sep !~ /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/) {
				print unlink(header)
				if (sep != "") print unlink(sep)
				next
			}
			nh = cells(header, head)
			table = 1
			next
		}
		n = cells($0, c)
		def = ""
		for (i = 2; i <= n; i++) {
			if (i == n && tolower(head[i]) == "meaning") {
				def = def (def == "" ? "" : ". ") c[i]
			} else {
				def = def (def == "" ? "" : "; ") head[i] ": " c[i]
			}
		}
		print unlink(c[1])
		print ": " unlink(def)
		print ""
		next
	}
	{ table = 0; print unlink($0) }
	' "$1"
}

{
	echo "% RBLMILTER 8 \"$date\" \"rblmilter $version\" \"System Manager's Manual\""
	echo
	for_man docs/rblmilter.8.md droplead
} >"$outdir/rblmilter.8.md"

{
	echo "% RBLMILTER.TOML 5 \"$date\" \"rblmilter $version\" \"File Formats Manual\""
	echo
	cat <<'EOF'
# NAME
rblmilter.toml - configuration file of rblmilter(8)

# SYNOPSIS
**/etc/rblmilter/rblmilter.toml**

# DESCRIPTION
**rblmilter**(8) reads this TOML file at start and again on SIGHUP; **-config** *FILE*
names another one, and **rblmilter -check-config** checks it without starting the daemon.
The Debian package installs a commented example with every key set to its default as the
file itself.

EOF
	for_man docs/configuration.md
	cat <<'EOF'

# FILES
*/etc/rblmilter/rblmilter.toml*
: The configuration file read when **-config** is not given.

# SEE ALSO
**rblmilter**(8), **postconf**(5) (smtpd_milters, postscreen_dnsbl_sites), **postscreen**(8);
the documentation in */usr/share/doc/rblmilter/docs/* (decisions.md, operations.md).
EOF
} >"$outdir/rblmilter.toml.5.md"

go-md2man -in "$outdir/rblmilter.8.md" -out "$outdir/rblmilter.8"
go-md2man -in "$outdir/rblmilter.toml.5.md" -out "$outdir/rblmilter.toml.5"
rm "$outdir/rblmilter.8.md" "$outdir/rblmilter.toml.5.md"
