#!/usr/bin/env bash
# bench-postfix.sh measures DNS blocklist checking where users feel it:
# through a real Postfix, from real client addresses, side by side with
# Postfix's own ways of doing it. One private Postfix instance (as the
# integration tests run it), one rbldnsd with the same zones, and one
# listener per configuration:
#
#   D       no filter (the baseline every cost is measured against)
#   A       rblmilter, connect stage, inet socket
#   A-unix  rblmilter, connect stage, unix socket
#   C       reject_rbl_client in smtpd_recipient_restrictions
#   B       postscreen with postscreen_dnsbl_sites (greet wait 6 s, the
#           default; dnsbl action enforce)
#   B1      the same with postscreen_greet_wait = 1s (full runs only)
#   N       a null milter (milterbench null: the milter protocol alone)
#   R-unix  a null milter that refuses the listed clients at connect with
#           a 554 reply, without any lookup (milterbench null -refuse), on
#           a unix socket: the floor of any refusing milter
#   R       the same on an inet socket (127.0.0.1): the floor A is
#           measured against
#   A0, A0-unix  A and A-unix served by another rblmilter binary
#           (BENCH_BASELINE): before and after a change, in the same run
#   A-dom   A with a domain list (dbl.test) asked about the HELO name and
#           the sender's domain too: the milter stays in the session for
#           HELO and MAIL (near setup only)
#   C-dom   C with reject_rhsbl_helo and reject_rhsbl_sender dbl.test:
#           Postfix's own way of asking the domain list (near setup only)
#
# Everything runs in a network namespace the script creates: Postfix on
# 192.0.2.25 and [2001:db8::25], the filters and rbldnsd on 127.0.0.1, and
# `milterbench smtp` connecting from a fresh real source address per
# session (a local route makes 198.18.0.0/15 and 2001:2::/48 bindable):
# listed clients from 198.18.0.0/16 and 2001:2:0:1::/64, which both lists
# list (bl2.test only the lower half of the IPv4 range), clean ones from
# 198.19.0.0/16 and 2001:2::/64. Every session shows the same clean HELO
# name and sender (milterbench smtp's defaults), which dbl.test does not
# list. Postfix's resolver (reject_rbl_client,
# postscreen's dnsblog) and rblmilter ask 127.0.0.1:53 in the namespace.
#
# Per configuration it reports where a listed client is refused and how
# fast (p50/p99 at 2 concurrent sessions), what a clean session costs over
# D, sessions/s at 2, 20 and 100 concurrent sessions from fresh addresses
# and at 20 from a warm pool of 200, CPU seconds per 1000 sessions (all
# Postfix processes + the filter + the DNS server, from /proc), DNS
# queries per session (rbldnsd's own counters), and every listed client
# accepted or clean client refused. Configurations run in alternating
# order, round after round; ratios are medians of per-round ratios.
#
# DNS setups (the lists and zones never change):
#   near   rbldnsd answers on 127.0.0.1:53 itself
#   far    the lists 20 ms away: `milterbench dns -forward` on :53 delays
#          every query, then asks rbldnsd
#   cache  the same behind a local caching resolver: unbound on :53
#          (contrib/unbound/rblmilter.conf) -> 20 ms -> rbldnsd
# The far and cache setups run D, A, A-unix and C only.
#
# Usage: scripts/bench-postfix.sh [-quick] [-profile] [-only CONFIGS] [-setups SETUPS]
#   -quick    correctness only, for CI: a few hundred sessions in all;
#             every configuration must start, refuse every listed client
#             (D and N deliver them: they do not filter) and deliver every
#             clean one, in every setup. No timing is judged.
#   -profile  also profile the milters under Postfix load (near setup,
#             warm pool): rblmilter's CPU profile, allocations per session
#             (from its Go runtime counters) and, for every milter, system
#             calls per session (strace -c), into $BENCH_DIR/profile
#   -only     configurations to run (default D,A,A-unix,C,B,B1,N,R,R-unix,A-dom,C-dom;
#             quick: without B1)
#   -setups   DNS setups to run (default near,far,cache)
#   -hold     set up (near DNS) and keep everything running, without any
#             run, until interrupted: for profiling by hand. The addresses,
#             PIDs and the command prefix are in $BENCH_DIR/env.sh.
# Environment:
#   BENCH_DIR     outputs and summary (default: a new directory in /tmp)
#   BENCH_ROUNDS  rounds in the near setup (default 5; far and cache 3)
#   BENCH_SECS    seconds per measured run (default 5; postscreen runs
#                 last at least two greet waits)
#   BENCH_LISTED  share of listed clients (default 0.7)
#   BENCH_IPV6    share of IPv6 clients (default 0.1)
#   BENCH_BASELINE  an rblmilter binary to compare with (adds A0, A0-unix)
#
# Needs root (network namespace, Postfix), postfix, rbldnsd, unbound, ip,
# go, jq, curl; strace for -profile. The full run takes about 40 minutes;
# -quick about 2. Writes $BENCH_DIR/summary.md; exit status 1 when a
# correctness check fails (a listed client accepted or a clean one refused
# by a filtering configuration, a session error, a configuration that
# does not start).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$ROOT/scripts/lib/common.sh"
QUICK=0
PROFILE=0
HOLD=0
ONLY=""
SETUPS="near,far,cache"
while [ $# -gt 0 ]; do
	case "$1" in
	-quick) QUICK=1 ;;
	-profile) PROFILE=1 ;;
	-hold) HOLD=1 ;;
	-only)
		shift
		ONLY=${1:?-only needs a list like A,C}
		;;
	-setups)
		shift
		SETUPS=${1:?-setups needs a list like near,far}
		;;
	*) help_or_unknown "$1" ;;
	esac
	shift
done
BASELINE=${BENCH_BASELINE:-}
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
	echo "bench-postfix.sh: BENCH_BASELINE=$BASELINE is not an executable" >&2
	exit 2
fi
if [ -z "$ONLY" ]; then
	ONLY="D,A,A-unix,C,B,B1,N,R,R-unix,A-dom,C-dom"
	[ "$QUICK" = 1 ] && ONLY="D,A,A-unix,C,B,N,R,R-unix,A-dom,C-dom"
	[ -n "$BASELINE" ] && ONLY+=",A0,A0-unix"
fi

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
if [ "$(id -u)" != 0 ]; then
	echo "bench-postfix.sh: needs root (network namespace, private Postfix instance)" >&2
	exit 2
fi
for tool in go jq curl ip postfix postconf rbldnsd unbound; do
	command -v "$tool" >/dev/null || {
		echo "bench-postfix.sh: $tool not found (scripts/test.sh installs what is missing)" >&2
		exit 2
	}
done
if [ "$PROFILE" = 1 ]; then
	command -v strace >/dev/null || {
		echo "bench-postfix.sh: -profile needs strace" >&2
		exit 2
	}
fi

OUT=${BENCH_DIR:-$(mktemp -d /tmp/rblmilter-bench-postfix.XXXXXX)}
mkdir -p "$OUT"
# Postfix and rbldnsd read their files after dropping privileges.
chmod 755 "$OUT"
rm -f "$OUT/failed"
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-5}
LISTED=${BENCH_LISTED:-0.7}
IPV6=${BENCH_IPV6:-0.1}
GREET_WAIT=6
POOL=200
if [ "$QUICK" = 1 ]; then
	ROUNDS=1
	POOL=40
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SUMMARY=$OUT/summary.md
NS=rblmilter-bench-$$
NETNS_ETC=/etc/netns/$NS
POSTFIX_UP=0
PF=$OUT/postfix

log() { echo "bench-postfix: $*" >&2; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
want_setup() { case ",$SETUPS," in *",$1,"*) return 0 ;; esac; return 1; }
fail() {
	: >"$OUT/failed"
	log "FAIL: $*"
	echo "- FAIL: $*" >>"$OUT/failures.md"
}
# NSX runs a program inside the namespace; `ip netns exec` execs it, so
# a started program's PID is the program's own.
NSX=(ip netns exec "$NS")
nsx() { "${NSX[@]}" "$@"; }

cleanup() {
	local pid
	if [ "$POSTFIX_UP" = 1 ]; then
		nsx postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
	fi
	stop_started
	ip netns delete "$NS" 2>/dev/null || true
	rm -rf "$NETNS_ETC"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { printf '%s\n' "$@" | jq -s 'map(select(. != null)) | sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end'; }
fmt() { if [ "$1" = null ]; then printf -- '-'; else printf "%.${2:-2}f" "$1"; fi; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

build_tools

#### the network namespace ####
SERVER4=192.0.2.25
SERVER6=2001:db8::25
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$SERVER4/32" dev lo
ip -n "$NS" addr add "$SERVER6/128" dev lo nodad
# Every address of the client networks is local: a session binds any of
# them as its source. IPv6 binds need ip_nonlocal_bind (the route alone
# lets the packets in); the setting is the namespace's own.
ip -n "$NS" route add local 198.18.0.0/15 dev lo
ip -n "$NS" -6 route add local 2001:2::/48 dev lo
nsx sysctl -q -w net.ipv6.ip_nonlocal_bind=1
# `ip netns exec` shows this file as /etc/resolv.conf to what it starts:
# Postfix's resolver asks 127.0.0.1:53 inside the namespace.
mkdir -p "$NETNS_ETC"
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >"$NETNS_ETC/resolv.conf"

#### the zones ####
ZDIR=$OUT/zones
mkdir -p "$ZDIR"
TXT1="Listed by bl.test, see https://bl.test.invalid/lookup"
TXT2="Listed by bl2.test"
printf ':127.0.0.2:%s\n127.0.0.2\n198.18.0.0/16\n' "$TXT1" >"$ZDIR/bl4"
printf ':127.0.0.2:%s\n::ffff:7f00:2\n2001:2:0:1::/64\n' "$TXT1" >"$ZDIR/bl6"
printf ':127.0.0.3:%s\n127.0.0.2\n198.18.0.0/17\n' "$TXT2" >"$ZDIR/bl24"
printf ':127.0.0.3:%s\n::ffff:7f00:2\n2001:2:0:1::/64\n' "$TXT2" >"$ZDIR/bl26"
# The domain list lists one name, which no session shows: it is there to
# be asked, as Spamhaus DBL is about every clean HELO name and sender.
printf ':127.0.1.2:Listed by dbl.test\nlisted.example\n' >"$ZDIR/dbl"
ZONES=(bl.test:ip4set:bl4 bl.test:ip6trie:bl6 bl2.test:ip4set:bl24 bl2.test:ip6trie:bl26 dbl.test:dnset:dbl)
RBLDNSD_STATS=$ZDIR/stats

# rbldnsd_start ADDR/PORT starts rbldnsd in the namespace; it writes its
# query counters to $RBLDNSD_STATS every second.
RBLDNSD_PID=""
rbldnsd_start() {
	: >"$RBLDNSD_STATS"
	chown rbldns "$RBLDNSD_STATS"
	start rbldnsd "${NSX[@]}" rbldnsd -n -u rbldns -b "$1" -w "$ZDIR" -c 1s -s "$RBLDNSD_STATS" -t 300 "${ZONES[@]}"
	RBLDNSD_PID=$STARTED
	await "rbldnsd did not start" "$OUT/rbldnsd.log" 10 awk 'NR >= 2 { ok = 1 } END { exit !ok }' "$RBLDNSD_STATS"
}

# dns_queries prints rbldnsd's total query count from a counter line
# written after this call began; between runs nothing queries, so the
# difference of two calls is exactly what the run in between asked.
dns_queries() {
	local since
	since=$(date +%s)
	poll 5 awk -v t="$since" '$1 > t { ok = 1 } END { exit !ok }' "$RBLDNSD_STATS" || {
		echo null
		return
	}
	awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^\*:/) { split($i, f, ":"); n = f[2] } } END { print n + 0 }' "$RBLDNSD_STATS"
}

#### the filters ####
RBL_SOCK=$OUT/sock/rblmilter.sock
RBL0_SOCK=$OUT/sock/rblmilter-baseline.sock
NULL_INET=127.0.0.1:8892
NULLR_SOCK=$OUT/sock/null-refuse.sock
NULLR_INET=127.0.0.1:8895
# What milterbench smtp sends as listed clients, and both zones list.
LISTED_NETS=198.18.0.0/16,2001:2:0:1::/64
mkdir -p "$OUT/sock"
chmod 755 "$OUT/sock"
# The rblmilter daemons: name -> binary, listen address, metrics port.
declare -A RBL_BIN=([rblmilter-inet]=$RBL [rblmilter-unix]=$RBL [rblmilter-dom]=$RBL)
declare -A RBL_LISTEN=([rblmilter-inet]=inet:127.0.0.1:8890 [rblmilter-unix]=unix:$RBL_SOCK [rblmilter-dom]=inet:127.0.0.1:8896)
declare -A RBL_METRICS=([rblmilter-inet]=9890 [rblmilter-unix]=9891 [rblmilter-dom]=9896)
if [ -n "$BASELINE" ]; then
	RBL_BIN+=([baseline-inet]=$BASELINE [baseline-unix]=$BASELINE)
	RBL_LISTEN+=([baseline-inet]=inet:127.0.0.1:8893 [baseline-unix]=unix:$RBL0_SOCK)
	RBL_METRICS+=([baseline-inet]=9893 [baseline-unix]=9894)
fi

# domain_list NAME prints the domain list entry of the daemon NAME (A-dom's).
domain_list() {
	[ "$1" = rblmilter-dom ] || return 0
	printf '\n[[list]]\nzone = "dbl.test"\nname = "Bench DBL"\ntype = "domain"\nchecks = ["helo", "sender"]\nmonitor = false\n'
}

# rblmilter_config NAME writes $OUT/NAME.toml.
rblmilter_config() {
	cat >"$OUT/$1.toml" <<EOF
listen = "${RBL_LISTEN[$1]}"
socket_group = "postfix"
socket_mode = "0660"
resolvers = ["127.0.0.1:53"]

[[list]]
zone = "bl.test"
name = "Bench List"
monitor = false

[[list]]
zone = "bl2.test"
name = "Bench List 2"
monitor = false
$(domain_list "$1")

[metrics]
listen = "127.0.0.1:${RBL_METRICS[$1]}"
pprof = true
EOF
	"${RBL_BIN[$1]}" -check-config -config "$OUT/$1.toml" >&2
}
for name in "${!RBL_BIN[@]}"; do rblmilter_config "$name"; done

# filters_start (re)starts the rblmilter daemons (an empty cache: "cold"
# means cold) and the null milter, and waits until they serve.
declare -A FILTER_PID
filters_start() {
	local name
	for name in "${!FILTER_PID[@]}"; do
		stop "${FILTER_PID[$name]}"
	done
	start null "${NSX[@]}" "$MB" null -listen "inet:$NULL_INET"
	FILTER_PID[null]=$STARTED
	rm -f "$NULLR_SOCK"
	start null-refuse "${NSX[@]}" "$MB" null -listen "unix:$NULLR_SOCK" -refuse "$LISTED_NETS"
	FILTER_PID[null-refuse]=$STARTED
	start null-refuse-inet "${NSX[@]}" "$MB" null -listen "inet:$NULLR_INET" -refuse "$LISTED_NETS"
	FILTER_PID[null-refuse-inet]=$STARTED
	for name in "${!RBL_BIN[@]}"; do
		start "$name" "${NSX[@]}" "${RBL_BIN[$name]}" -config "$OUT/$name.toml"
		FILTER_PID[$name]=$STARTED
	done
	for name in "${!RBL_BIN[@]}"; do
		await "$name did not become ready" "$OUT/$name.log" 20 nsx curl -sf "http://127.0.0.1:${RBL_METRICS[$name]}/readyz"
	done
	await "the null milter did not start" "$OUT/null.log" 10 grep -q "answering" "$OUT/null.log"
	await "the refusing null milter did not start" "$OUT/null-refuse.log" 10 grep -q "answering" "$OUT/null-refuse.log"
	await "the refusing null milter (inet) did not start" "$OUT/null-refuse-inet.log" 10 grep -q "answering" "$OUT/null-refuse-inet.log"
	# Postfix's smtpd (user postfix) must be able to connect.
	chmod 666 "$NULLR_SOCK"
}

#### Postfix ####
# Listener ports, one per configuration.
declare -A PORT=([D]=2525 [A]=2526 [A-unix]=2527 [C]=2528 [N]=2529 [B]=2530 [B1]=2531 [A0]=2532 [A0-unix]=2533 [R-unix]=2534 [R]=2535 [A-dom]=2536 [C-dom]=2537)
declare -A FILTER=([A]=rblmilter-inet [A-unix]=rblmilter-unix [N]=null [A0]=baseline-inet [A0-unix]=baseline-unix [R-unix]=null-refuse [R]=null-refuse-inet [A-dom]=rblmilter-dom)
mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
chown postfix:postfix "$PF/data"
# The milter settings of contrib/postfix/main.cf, as shipped, with the
# address changed (the integration tests check the file itself).
contrib_milters=$(sed -n 's/^smtpd_milters = //p' "$ROOT/contrib/postfix/main.cf")
contrib_connect_timeout=$(sed -n 's/^milter_connect_timeout = //p' "$ROOT/contrib/postfix/main.cf")
case $contrib_milters in *inet:127.0.0.1:8890*) ;; *)
	log "contrib/postfix/main.cf: smtpd_milters no longer names inet:127.0.0.1:8890: $contrib_milters"
	exit 1
	;;
esac
cat >"$PF/conf/main.cf" <<EOF
# Private Postfix instance of scripts/bench-postfix.sh.
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.test
mydomain = bench.test
myorigin = \$myhostname
inet_interfaces = all
inet_protocols = all
mynetworks = 127.0.0.1/32
# Mail for bench.test is accepted for any local part and discarded after
# queueing: what is measured ends with "250 queued".
mydestination = bench.test
local_recipient_maps =
local_transport = discard:bench
alias_maps =
alias_database =
relayhost =
default_transport = error:5.3.0 the benchmark delivers nothing off this machine
biff = no
smtpd_peername_lookup = no
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
default_process_limit = 300
smtpd_milters =
milter_connect_timeout = $contrib_connect_timeout
bench_milters_inet = $contrib_milters
bench_milters_unix = ${contrib_milters//inet:127.0.0.1:8890/unix:$RBL_SOCK}
bench_milters_baseline_inet = ${contrib_milters//inet:127.0.0.1:8890/inet:127.0.0.1:8893}
bench_milters_baseline_unix = ${contrib_milters//inet:127.0.0.1:8890/unix:$RBL0_SOCK}
bench_milters_null = ${contrib_milters//inet:127.0.0.1:8890/inet:$NULL_INET}
bench_milters_refuse = ${contrib_milters//inet:127.0.0.1:8890/unix:$NULLR_SOCK}
bench_milters_refuse_inet = ${contrib_milters//inet:127.0.0.1:8890/inet:$NULLR_INET}
bench_milters_dom = ${contrib_milters//inet:127.0.0.1:8890/${RBL_LISTEN[rblmilter-dom]}}
bench_rbl_restrictions = permit_mynetworks, reject_unauth_destination, reject_rbl_client bl.test, reject_rbl_client bl2.test
bench_rhsbl_restrictions = \$bench_rbl_restrictions, reject_rhsbl_helo dbl.test, reject_rhsbl_sender dbl.test
postscreen_dnsbl_sites = bl.test, bl2.test
postscreen_dnsbl_action = enforce
EOF
cat >"$PF/conf/master.cf" <<EOF
# service type private unpriv chroot wakeup maxproc command
${PORT[D]}      inet  n       -       n       -       -       smtpd
${PORT[A]}      inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_inet
${PORT[A-unix]} inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_unix
${PORT[C]}      inet  n       -       n       -       -       smtpd
  -o smtpd_recipient_restrictions=\$bench_rbl_restrictions
${PORT[N]}      inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_null
${PORT[R-unix]} inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_refuse
${PORT[R]}      inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_refuse_inet
${PORT[A0]}     inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_baseline_inet
${PORT[A0-unix]} inet n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_baseline_unix
${PORT[A-dom]}  inet  n       -       n       -       -       smtpd
  -o smtpd_milters=\$bench_milters_dom
${PORT[C-dom]}  inet  n       -       n       -       -       smtpd
  -o smtpd_recipient_restrictions=\$bench_rhsbl_restrictions
${PORT[B]}      inet  n       -       n       -       1       postscreen
  -o postscreen_cache_map=btree:\$data_directory/postscreen_b
${PORT[B1]}     inet  n       -       n       -       1       postscreen
  -o postscreen_cache_map=btree:\$data_directory/postscreen_b1
  -o postscreen_greet_wait=1s
smtpd     pass  -       -       n       -       -       smtpd
dnsblog   unix  -       -       n       -       0       dnsblog
EOF
cat "$ROOT/scripts/lib/postfix-services.cf" >>"$PF/conf/master.cf"
if postconf -c "$PF/conf" -n 2>&1 | grep -i warning >&2; then
	log "postconf warns about the benchmark's main.cf (above)"
	exit 1
fi
nsx postfix -c "$PF/conf" check
nsx postfix -c "$PF/conf" start >/dev/null
POSTFIX_UP=1
await "postfix did not start" "$PF/maillog" 30 grep -q "daemon started" "$PF/maillog"
POSTFIX_PID=$(awk '{ print $1; exit }' "$PF/queue/pid/master.pid")

#### the DNS setups ####
DNS_EXTRA_PIDS=()
dns_stop() {
	local pid
	for pid in "${DNS_EXTRA_PIDS[@]}" $RBLDNSD_PID; do
		stop "$pid"
	done
	DNS_EXTRA_PIDS=()
	RBLDNSD_PID=""
}

# resolves: through the namespace's 127.0.0.1:53, rblmilter's check
# command finds a listed client listed (exit status 1).
resolves() {
	local rc=0
	nsx "$RBL" check -config "$OUT/rblmilter-inet.toml" 198.18.0.1 >/dev/null 2>&1 || rc=$?
	[ "$rc" = 1 ]
}

dns_setup() {
	dns_stop
	case $1 in
	near)
		rbldnsd_start 127.0.0.1/53
		;;
	far | cache)
		rbldnsd_start 127.0.0.1/5301
		local proxy=127.0.0.1:53
		[ "$1" = cache ] && proxy=127.0.0.1:5300
		start "proxy-$1" "${NSX[@]}" "$MB" dns -listen "$proxy" -zones bl.test,bl2.test -delay 20ms -forward 127.0.0.1:5301
		DNS_EXTRA_PIDS+=("$STARTED")
		if [ "$1" = cache ]; then
			{
				cat <<EOF
# unbound of scripts/bench-postfix.sh: the harness settings, then
# contrib/unbound/rblmilter.conf verbatim, then its mirror example per zone,
# pointed at the 20 ms proxy.
server:
    username: ""
    chroot: ""
    directory: "$OUT"
    pidfile: "$OUT/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    local-zone: "test." nodefault
    do-not-query-localhost: no
EOF
				cat "$ROOT/contrib/unbound/rblmilter.conf"
				for z in bl.test bl2.test; do
					printf '\nserver:\n    domain-insecure: "%s"\nstub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@5300\n' "$z" "$z"
				done
			} >"$OUT/unbound.conf"
			unbound-checkconf "$OUT/unbound.conf" >&2
			start unbound "${NSX[@]}" unbound -d -c "$OUT/unbound.conf"
			DNS_EXTRA_PIDS+=("$STARTED")
		fi
		;;
	esac
	poll 20 resolves || {
		log "DNS setup $1 does not answer on 127.0.0.1:53"
		tail -5 "$OUT"/rbldnsd.log "$OUT"/proxy-*.log "$OUT"/unbound.log 2>/dev/null >&2 || true
		exit 1
	}
}

# dns_pids prints the -cpu flags of the DNS server(s) that count: rbldnsd
# and, in the cache setup, unbound (the proxy stands for the network).
dns_cpu_flags() {
	echo "-cpu dns=$RBLDNSD_PID"
	if [ "$1" = cache ]; then
		echo "-cpu dns=${DNS_EXTRA_PIDS[1]}"
	fi
}

#### one measured run ####
# OFFSET holds the next fresh address of each sequence (see the rounds).
declare -A OFFSET
SHARED_OFFSETS=0
offset_key() { if [ "$SHARED_OFFSETS" = 1 ]; then echo shared; else echo "$1"; fi; }
# measure SETUP ROUND CONFIG CONC KIND [SESSIONS] runs milterbench smtp
# against CONFIG's listener; KIND is cold (fresh addresses) or warm (a pool
# of $POOL addresses, sent once before measuring). Output:
# $OUT/runs/SETUP/CONFIG/cCONC-KIND-rROUND.json with dns_queries added.
measure() {
	local setup=$1 round=$2 cfg=$3 conc=$4 kind=$5 n=${6:-}
	local dir=$OUT/runs/$setup/$cfg
	mkdir -p "$dir"
	local file=$dir/c$conc-$kind-r$round.json
	local port=${PORT[$cfg]}
	local secs=$SECS
	case $cfg in B) secs=$((SECS > 2 * GREET_WAIT + 1 ? SECS : 2 * GREET_WAIT + 1)) ;; B1) secs=$((SECS > 3 ? SECS : 3)) ;; esac
	local bound=(-duration "${secs}s")
	[ -n "$n" ] && bound=(-n "$n")
	local mixargs=(-listed "$LISTED" -ipv6 "$IPV6")
	local server=(-server "$SERVER4:$port,[$SERVER6]:$port")
	if [ "$kind" = warm ]; then
		mixargs+=(-repeat 1 -pool "$POOL" -offset 0)
		# The warm-up is a run of its own, so that the measured run and
		# its DNS query count hold cache hits only: every pooled address
		# once (postscreen's greet wait makes a wide warm-up worth it).
		nsx "$MB" smtp -json -c 100 -n "$POOL" "${mixargs[@]}" "${server[@]}" >"$dir/warmup-c$conc-r$round.json" 2>&1 ||
			fail "$setup $cfg warm-up: $(jq -c '.error_samples // .' "$dir/warmup-c$conc-r$round.json" 2>/dev/null | head -c 300)"
	else
		local off=${OFFSET[$(offset_key "$cfg")]:-$POOL}
		mixargs+=(-repeat 0 -offset "$off")
	fi
	local cpu=(-cpu "postfix=$POSTFIX_PID")
	# shellcheck disable=SC2207
	cpu+=($(dns_cpu_flags "$setup"))
	if [ -n "${FILTER[$cfg]:-}" ]; then
		cpu+=(-cpu "filter=${FILTER_PID[${FILTER[$cfg]}]}")
	fi
	local q0 q1
	q0=$(dns_queries)
	nsx "$MB" smtp -json -c "$conc" "${bound[@]}" "${mixargs[@]}" "${cpu[@]}" "${server[@]}" >"$file.tmp" 2>"$dir/c$conc-$kind-r$round.err" || true
	q1=$(dns_queries)
	if [ ! -s "$file.tmp" ]; then
		fail "$setup $cfg c=$conc $kind: milterbench smtp produced no report: $(head -3 "$dir/c$conc-$kind-r$round.err")"
		return
	fi
	jq --argjson q "$(calc "if $q0 == null or $q1 == null then null else $q1 - $q0 end")" --arg load "$(load)" \
		--arg cfg "$cfg" --arg setup "$setup" --arg kind "$kind" --argjson round "$round" \
		'. + {dns_queries: $q, dns_queries_per_session: (if $q == null or .sessions == 0 then null else $q / .sessions end), loadavg: $load, config: $cfg, setup: $setup, kind: $kind, round: $round}' \
		"$file.tmp" >"$file"
	rm -f "$file.tmp"
	if [ "$kind" = cold ]; then
		local key
		key=$(offset_key "$cfg")
		OFFSET[$key]=$(($(jq '.sessions + .errors + (.aborted // 0)' "$file") + ${OFFSET[$key]:-$POOL}))
	fi
	check_run "$file"
	log "$setup r$round $cfg c=$conc $kind: $(jq -r '"\(.sessions) sessions, \(.sessions_per_s | floor)/s, listed \(.listed.outcomes), clean \(.clean.outcomes), errors \(.errors), dns q/session \(.dns_queries_per_session // "-")"' "$file") (load $(load))"
}

# check_run FILE: the correctness checks every run gets.
check_run() {
	local f=$1 cfg setup
	cfg=$(jq -r .config "$f")
	setup=$(jq -r .setup "$f")
	local what="$setup $cfg c=$(jq .concurrency "$f") $(jq -r .kind "$f")"
	if [ "$(jq .errors "$f")" != 0 ]; then
		fail "$what: $(jq .errors "$f") session errors: $(jq -c .error_kinds "$f") $(jq -c '.error_samples // []' "$f")"
	fi
	if [ "$(jq .mix.fresh_reused "$f")" != null ] && [ "$(jq '.mix.fresh_reused // 0' "$f")" != 0 ]; then
		fail "$what: the fresh client networks ran out ($(jq .mix.fresh_reused "$f") addresses reused)"
	fi
	if [ "$(jq .clean.refused "$f")" != 0 ]; then
		fail "$what: $(jq .clean.refused "$f") clean clients refused: $(jq -c .clean.outcomes "$f")"
	fi
	case $cfg in
	D | N) ;;
	B1)
		# postscreen with a 1 s greet wait lets listed clients through
		# when their DNS answers come late: reported, not a failure.
		;;
	*)
		if [ "$(jq .listed.accepted "$f")" != 0 ]; then
			fail "$what: $(jq .listed.accepted "$f") listed clients accepted"
		fi
		;;
	esac
}

if [ "$HOLD" = 1 ]; then
	dns_setup near
	filters_start
	{
		printf 'NS=%q\nOUT=%q\nPOSTFIX_PID=%s\nRBLDNSD_PID=%s\n' "$NS" "$OUT" "$POSTFIX_PID" "$RBLDNSD_PID"
		for name in "${!FILTER_PID[@]}"; do printf 'PID_%s=%s\n' "${name//-/_}" "${FILTER_PID[$name]}"; done
		for c in "${!PORT[@]}"; do printf 'PORT_%s=%s\n' "${c//-/_}" "${PORT[$c]}"; done
		printf 'SERVERS="%s:PORT,[%s]:PORT"\n' "$SERVER4" "$SERVER6"
		echo "# e.g.: ip netns exec \$NS \$OUT/bin/milterbench smtp -c 20 -n 2000 -listed $LISTED -server $SERVER4:${PORT[A]}"
	} >"$OUT/env.sh"
	log "holding (interrupt to end); see $OUT/env.sh"
	sleep infinity &
	PIDS+=("$!")
	wait "$!"
	exit 0
fi

#### the runs ####
{
	echo "# rblmilter through Postfix: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(uname -sr), $(go version | cut -d' ' -f3), $(postconf -d -h mail_version | sed 's/^/Postfix /'), rbldnsd, unbound $(unbound -V 2>/dev/null | awk '/^Version/ { print $2 }')"
	echo "- commit: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "- command: scripts/bench-postfix.sh $([ "$QUICK" = 1 ] && echo -quick) -only $ONLY -setups $SETUPS (BENCH_ROUNDS=$ROUNDS BENCH_SECS=$SECS BENCH_LISTED=$LISTED BENCH_IPV6=$IPV6)"
	echo "- load at start: $(uptime)"
	echo "- outputs in $OUT"
	if [ "$QUICK" = 1 ]; then
		echo "- quick mode: a correctness check; its figures come from a few dozen sessions and measure nothing"
	fi
	echo
} >"$SUMMARY"

# configs_in SETUP prints the configurations the setup runs.
configs_in() {
	local c
	for c in D A A-unix A0 A0-unix C B B1 N R R-unix A-dom C-dom; do
		want "$c" || continue
		case $1 in far | cache) case $c in B | B1 | N | R | R-unix | A-dom | C-dom) continue ;; esac ;; esac
		echo "$c"
	done
}

for setup in near far cache; do
	want_setup "$setup" || continue
	log "DNS setup $setup"
	mapfile -t CFGS < <(configs_in "$setup")
	rounds=$ROUNDS
	if [ "$setup" != near ] && [ "$QUICK" = 0 ]; then rounds=${BENCH_ROUNDS:-3}; fi
	for r in $(seq 1 "$rounds"); do
		# Every round starts with empty caches (rblmilter's, unbound's),
		# so that "cold" stays cold while the addresses start over.
		dns_setup "$setup"
		filters_start
		# Fresh addresses: per configuration, since nothing is shared
		# between them; in the cache setup, unbound is, so there all
		# configurations draw from one sequence. Postscreen's cache
		# outlives the round, so its sequence never starts over.
		for c in D A A-unix A0 A0-unix C N R R-unix A-dom C-dom shared; do OFFSET[$c]=$POOL; done
		SHARED_OFFSETS=0
		[ "$setup" = cache ] && SHARED_OFFSETS=1
		# Rotate the order every round, so that a drifting load on the
		# machine does not favour one configuration.
		n=${#CFGS[@]}
		for k in $(seq 0 $((n - 1))); do
			cfg=${CFGS[$(((k + r - 1) % n))]}
			if [ "$QUICK" = 1 ]; then
				# Enough sessions for every class (listed and clean, IPv4
				# and IPv6) at 20 concurrent sessions, and a warm pass.
				measure "$setup" "$r" "$cfg" 20 cold 60
				[ "$setup" = near ] && measure "$setup" "$r" "$cfg" 20 warm 20
				continue
			fi
			if [ "$setup" = near ]; then
				measure "$setup" "$r" "$cfg" 2 cold
				measure "$setup" "$r" "$cfg" 20 cold
				measure "$setup" "$r" "$cfg" 100 cold
			else
				measure "$setup" "$r" "$cfg" 2 cold
				measure "$setup" "$r" "$cfg" 20 cold
			fi
			measure "$setup" "$r" "$cfg" 20 warm
		done
	done
done

#### profiles ####
# traced PID: every thread of PID has a tracer.
traced() {
	local st
	for st in /proc/"$1"/task/*/status; do
		awk '/^TracerPid:/ { exit $2 == 0 }' "$st" || return 1
	done
}

# counter NAME PORT prints one series of an rblmilter's /metrics.
counter() { nsx curl -sf "http://127.0.0.1:$2/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

# profile_run CFG N FILE: N sessions from a warm pool of 50 at c=20.
profile_run() {
	nsx "$MB" smtp -json -c 20 -n "$2" -listed "$LISTED" -ipv6 "$IPV6" -repeat 1 -pool 50 -offset 0 \
		-server "$SERVER4:${PORT[$1]},[$SERVER6]:${PORT[$1]}" >"$3" 2>&1 || fail "profile run of $1: $(head -c 300 "$3")"
}

if [ "$PROFILE" = 1 ] && want_setup near; then
	log "profiling under Postfix load"
	dns_setup near
	filters_start
	P=$OUT/profile
	mkdir -p "$P"
	echo "| milter | sessions | allocations / session | bytes allocated / session |" >"$P/allocs.md"
	echo "|---|---|---|---|" >>"$P/allocs.md"
	for cfg in A A-unix A0 A0-unix N; do
		want "$cfg" || continue
		name=${FILTER[$cfg]}
		fpid=${FILTER_PID[$name]}
		profile_run "$cfg" 50 /dev/null # fills the cache: cache hits from here on
		if [ "$name" != null ]; then
			# A CPU profile and the allocations over 2000 cache-hit
			# sessions, from the daemon's own Go runtime counters.
			mport=${RBL_METRICS[$name]}
			m0=$(counter go_memstats_mallocs_total "$mport")
			b0=$(counter go_memstats_alloc_bytes_total "$mport")
			nsx curl -sf -o "$P/$cfg-cpu.pprof" "http://127.0.0.1:$mport/debug/pprof/profile?seconds=$SECS" &
			prof=$!
			profile_run "$cfg" 2000 "$P/$cfg-allocs-run.json"
			m1=$(counter go_memstats_mallocs_total "$mport")
			b1=$(counter go_memstats_alloc_bytes_total "$mport")
			n=$(jq .sessions "$P/$cfg-allocs-run.json")
			echo "| $cfg | $n | $(fmt "$(calc "($m1 - $m0) / $n")" 1) | $(fmt "$(calc "($b1 - $b0) / $n")" 0) |" >>"$P/allocs.md"
			wait "$prof" || true
			go tool pprof -top -nodecount=40 "${RBL_BIN[$name]}" "$P/$cfg-cpu.pprof" >"$P/$cfg-cpu.txt" 2>/dev/null || true
		fi
		# System calls per session: strace -c on the milter over 2000
		# cache-hit sessions (strace slows it down; nothing here is timed).
		strace -c -f -q -o "$P/$cfg-strace.txt" -p "$fpid" &
		st=$!
		# strace attaches to each thread in turn; wait until it has.
		poll 10 traced "$fpid" || log "strace did not attach to every thread of $cfg's milter"
		profile_run "$cfg" 2000 "$P/$cfg-strace-run.json"
		kill -INT "$st" 2>/dev/null || true
		wait "$st" 2>/dev/null || true
	done
fi

#### the summary ####
# field SETUP CONFIG CONC KIND ROUND JQ prints one figure of one run.
field() {
	local f=$OUT/runs/$1/$2/c$3-$4-r$5.json
	if [ -s "$f" ]; then jq "$6" "$f"; else echo null; fi
}
# med SETUP CONFIG CONC KIND JQ: the median over the rounds.
med() {
	local vals=() r
	for r in $(seq 1 "$ROUNDS_OF"); do vals+=("$(field "$1" "$2" "$3" "$4" "$r" "$5")"); done
	median "${vals[@]}"
}
# ratios SETUP CONC KIND JQ CONFIG-A CONFIG-B: the per-round ratios A/B.
ratios() {
	local r a b
	for r in $(seq 1 "$ROUNDS_OF"); do
		a=$(field "$1" "$5" "$2" "$3" "$r" "$4")
		b=$(field "$1" "$6" "$2" "$3" "$r" "$4")
		calc "if $a == null or $b == null or $b == 0 then null else $a / $b end"
	done
}
# ratio ...: their median, and their range (the round-to-round noise).
ratio() {
	local vals m
	mapfile -t vals < <(ratios "$@")
	m=$(median "${vals[@]}")
	if [ "$m" = null ]; then
		echo -
		return
	fi
	echo "$(fmt "$m") (rounds $(fmt "$(printf '%s\n' "${vals[@]}" | jq -s 'map(select(. != null)) | min')")–$(fmt "$(printf '%s\n' "${vals[@]}" | jq -s 'map(select(. != null)) | max')"))"
}
CPU1000='(.cpu // {} | [.[].cpu_s_per_1000_sessions] | add)'
FILTERCPU='(.cpu.filter.cpu_s_per_1000_sessions // null)'
WHERE='[.listed.outcomes | to_entries[] | select(.key != "accepted") | .key] | join(", ")'

for setup in near far cache; do
	want_setup "$setup" || continue
	[ -d "$OUT/runs/$setup" ] || continue
	ROUNDS_OF=$ROUNDS
	if [ "$setup" != near ] && [ "$QUICK" = 0 ]; then ROUNDS_OF=${BENCH_ROUNDS:-3}; fi
	mapfile -t CFGS < <(configs_in "$setup")
	lc=2
	[ "$QUICK" = 1 ] && lc=20
	{
		echo "## DNS setup: $setup ($ROUNDS_OF rounds, medians)"
		echo
		echo "| config | listed refused at | refused p50 / p99 ms (c=$lc) | clean accepted p50 ms (c=$lc), over D | sessions/s c=2 / 20 / 100 cold; c=20 warm | CPU s / 1000 sessions c=20 cold (warm): all (filter) | DNS queries / session cold (warm) | listed accepted / clean refused (all runs) |"
		echo "|---|---|---|---|---|---|---|---|"
	} >>"$SUMMARY"
	dclean=$(med "$setup" D "$lc" cold '.clean.accepted_latency.p50_ms')
	for cfg in "${CFGS[@]}"; do
		where=$(field "$setup" "$cfg" "$lc" cold 1 "$WHERE" | tr -d '"')
		rp50=$(med "$setup" "$cfg" "$lc" cold 'if .listed.refused > 0 then .listed.refused_latency.p50_ms else null end')
		rp99=$(med "$setup" "$cfg" "$lc" cold 'if .listed.refused > 0 then .listed.refused_latency.p99_ms else null end')
		cp50=$(med "$setup" "$cfg" "$lc" cold '.clean.accepted_latency.p50_ms')
		over=$(calc "if $cp50 == null or $dclean == null then null else $cp50 - $dclean end")
		rates=""
		for c in 2 20 100; do rates+="$(fmt "$(med "$setup" "$cfg" "$c" cold '.sessions_per_s')" 0) / "; done
		rates+="$(fmt "$(med "$setup" "$cfg" 20 warm '.sessions_per_s')" 0)"
		cpu="$(fmt "$(med "$setup" "$cfg" 20 cold "$CPU1000")") ($(fmt "$(med "$setup" "$cfg" 20 warm "$CPU1000")"))"
		if [ -n "${FILTER[$cfg]:-}" ]; then
			cpu+=": filter $(fmt "$(med "$setup" "$cfg" 20 cold "$FILTERCPU")") ($(fmt "$(med "$setup" "$cfg" 20 warm "$FILTERCPU")"))"
		fi
		dq="$(fmt "$(med "$setup" "$cfg" 20 cold '.dns_queries_per_session')") ($(fmt "$(med "$setup" "$cfg" 20 warm '.dns_queries_per_session')"))"
		wrong=$(cat "$OUT/runs/$setup/$cfg"/*.json | jq -s '"\(map(.listed.accepted) | add) / \(map(.clean.refused) | add) of \(map(.sessions) | add)"' | tr -d '"')
		case $cfg in D | N) wrong+=" (no filter)" ;; esac
		echo "| $cfg | ${where:--} | $(fmt "$rp50") / $(fmt "$rp99") | $(fmt "$cp50") ($(fmt "$over" 2)) | $rates | $cpu | $dq | $wrong |" >>"$SUMMARY"
	done
	{
		echo
		echo "Ratios (median of per-round ratios, same run):"
		echo
	} >>"$SUMMARY"
	pair() { # LABEL CONC KIND JQ X Y
		if want "$5" && want "$6"; then
			echo "- $1: $(ratio "$setup" "$2" "$3" "$4" "$5" "$6")" >>"$SUMMARY"
		fi
	}
	pair "CPU per session, Postfix + rblmilter inet / Postfix + reject_rbl_client, c=20 cold" 20 cold "$CPU1000" A C
	pair "the same, warm" 20 warm "$CPU1000" A C
	pair "CPU per session, Postfix + a refusing null milter inet (no lookups) / Postfix + reject_rbl_client, c=20 cold" 20 cold "$CPU1000" R C
	pair "the same, warm" 20 warm "$CPU1000" R C
	pair "CPU per session, Postfix + rblmilter inet / Postfix + the refusing null milter inet, c=20 cold" 20 cold "$CPU1000" A R
	pair "the same, warm" 20 warm "$CPU1000" A R
	pair "CPU per session, Postfix + rblmilter unix / Postfix + reject_rbl_client, c=20 cold" 20 cold "$CPU1000" A-unix C
	pair "the same, warm" 20 warm "$CPU1000" A-unix C
	pair "sessions/s rblmilter unix / reject_rbl_client, c=20 cold" 20 cold .sessions_per_s A-unix C
	pair "the same, warm" 20 warm .sessions_per_s A-unix C
	pair "sessions/s rblmilter unix / reject_rbl_client, c=100 cold" 100 cold .sessions_per_s A-unix C
	pair "CPU per session, Postfix + a refusing null milter unix (no lookups) / Postfix + reject_rbl_client, c=20 cold" 20 cold "$CPU1000" R-unix C
	pair "the same, warm" 20 warm "$CPU1000" R-unix C
	pair "sessions/s, the refusing null milter unix / reject_rbl_client, c=20 cold" 20 cold .sessions_per_s R-unix C
	pair "CPU per session, Postfix + rblmilter unix / Postfix + the refusing null milter unix, c=20 cold" 20 cold "$CPU1000" A-unix R-unix
	pair "the same, warm" 20 warm "$CPU1000" A-unix R-unix
	pair "rblmilter's own CPU per cache-hit session / the null go-milter's, inet (c=20 warm)" 20 warm "$FILTERCPU" A N
	pair "the same, rblmilter on the unix socket" 20 warm "$FILTERCPU" A-unix N
	pair "rblmilter's own CPU per session, this build / the baseline, inet, c=20 warm" 20 warm "$FILTERCPU" A A0
	pair "the same, c=20 cold" 20 cold "$FILTERCPU" A A0
	pair "the same, unix socket, c=20 warm" 20 warm "$FILTERCPU" A-unix A0-unix
	pair "the same, unix socket, c=20 cold" 20 cold "$FILTERCPU" A-unix A0-unix
	pair "CPU per session, Postfix + this build / Postfix + the baseline, inet, c=20 warm" 20 warm "$CPU1000" A A0
	pair "the same, unix socket" 20 warm "$CPU1000" A-unix A0-unix
	pair "CPU per session, Postfix + rblmilter with the HELO and sender domain list / Postfix + rblmilter with IP lists only, inet, c=20 cold" 20 cold "$CPU1000" A-dom A
	pair "the same, warm" 20 warm "$CPU1000" A-dom A
	pair "rblmilter's own CPU per session, with the domain list / IP lists only, c=20 cold" 20 cold "$FILTERCPU" A-dom A
	pair "the same, warm" 20 warm "$FILTERCPU" A-dom A
	pair "CPU per session, Postfix + rblmilter with the domain list / Postfix + reject_rbl_client + reject_rhsbl_helo + reject_rhsbl_sender, c=20 cold" 20 cold "$CPU1000" A-dom C-dom
	pair "the same, warm" 20 warm "$CPU1000" A-dom C-dom
	pair "sessions/s, rblmilter with the domain list / reject_rbl_client + reject_rhsbl_*, c=20 cold" 20 cold .sessions_per_s A-dom C-dom
	echo >>"$SUMMARY"
done
if [ "$PROFILE" = 1 ] && [ -d "$OUT/profile" ]; then
	{
		echo "## Profiles (near setup, cache hits, c=20)"
		echo
		echo "Allocations per session (the daemon's go_memstats counters):"
		echo
		cat "$OUT/profile/allocs.md"
		echo
		echo "System calls per session (strace -c -f on the milter; the most frequent):"
		echo
		strace_cfgs=()
		for cfg in A A-unix A0 A0-unix N; do [ -s "$OUT/profile/$cfg-strace.txt" ] && strace_cfgs+=("$cfg"); done
		printf '| syscall |'; printf ' %s |' "${strace_cfgs[@]}"; echo
		printf '|---|'; printf -- '---|%.0s' "${strace_cfgs[@]}"; echo
		# strace -c columns: % time, seconds, usecs/call, calls, [errors,]
		# syscall.
		for cfg in "${strace_cfgs[@]}"; do
			n=$(jq .sessions "$OUT/profile/$cfg-strace-run.json" 2>/dev/null || echo 0)
			awk -v n="$n" -v c="$cfg" 'n > 0 && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "%s %s %.2f\n", $NF, c, $4 / n }' "$OUT/profile/$cfg-strace.txt"
		done | jq -Rrn --arg cfgs "${strace_cfgs[*]}" '
			[inputs | split(" ") | {s: .[0], c: .[1], v: (.[2] | tonumber)}] as $rows
			| ($cfgs | split(" ")) as $cs
			| ($rows | group_by(.s) | map({s: .[0].s, t: (map(.v) | add), v: (map({(.c): .v}) | add)}) | sort_by(-.t) | .[:14][])
			| "| \(.s) | " + ([$cs[] as $c | (.v[$c] // 0 | . * 100 | round / 100 | tostring)] | join(" | ")) + " |"'
		echo
		for f in "$OUT"/profile/*-cpu.txt; do
			[ -s "$f" ] && echo "- CPU profile: $f (go tool pprof -top)"
		done
		echo
	} >>"$SUMMARY"
fi
echo "- load at end: $(uptime)" >>"$SUMMARY"
if [ -e "$OUT/failures.md" ]; then
	{
		echo
		echo "## Failures"
		cat "$OUT/failures.md"
	} >>"$SUMMARY"
fi
echo >&2
cat "$SUMMARY"
[ ! -e "$OUT/failed" ]
