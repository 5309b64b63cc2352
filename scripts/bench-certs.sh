#!/usr/bin/env bash
# Benchmark (not a test) of certificate issuance: `cryptdomainmgr --prepare`
# against a local Pebble (Let's Encrypt's ACME test CA) validating DNS-01
# against a local Knot DNS, the same setup as scripts/demo.sh.
#
# For N = 1 and N = 10 certificates ([cert:c1] ... [cert:cN], one name each,
# nK.example.test) runs one `--prepare` with a fresh state directory (so a new
# ACME account and N new orders) REPS times, and reports wall time and CPU time
# (user + sys of the process) as a markdown table with the median. If issuance
# is concurrent, N = 10 takes well under 2x the wall time of N = 1. Each run is
# checked: exit 0, N orders at Pebble, N certificates prepared.
#
# Usage: scripts/bench-certs.sh   (environment: COUNTS="1 10" REPS=3 KEEP=1 to
#                                  keep the temporary directory with logs;
#                                  CDM_BIN=PATH runs that binary instead of building one)
# Needs: cargo, knotd, knotc, dig, python3, pebble, openssl (demo.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=${COUNTS:-"1 10"}
REPS=${REPS:-3}
ZONE=example.test
export KNOT_KEYNAME=cdm-bench-key
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
PATH="$PATH:/usr/sbin:/sbin"

die() { echo "bench-certs: $*" >&2; exit 1; }
for tool in cargo knotd knotc dig python3 pebble openssl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/demo.sh installs knot, knot-dnsutils, dnsutils, pebble, openssl)"
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=$(release_binary) || die "no binary to measure"

# shellcheck source=scripts/knot-lib.sh
. scripts/knot-lib.sh
# shellcheck source=scripts/pebble-lib.sh
. scripts/pebble-lib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-bench-certs.XXXXXX")
cleanup() {
    pebble_stop
    knot_stop
    if [ -n "${KEEP:-}" ]; then echo "bench-certs: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

knot_start "$WORK/knot" "$ZONE" "@ 3600 IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 300
@ 3600 IN NS ns1.$ZONE.
ns1 3600 IN A 127.0.0.1" || die "knotd did not start"
pebble_start "$WORK/pebble" "127.0.0.1:$KNOT_PORT" || die "pebble did not start"
echo "== knotd on 127.0.0.1:$KNOT_PORT, pebble at $PEBBLE_DIR_URL" >&2

# config N RUNDIR: the configuration for N certificates, written to RUNDIR/cdm.conf.
config() {
    local n=$1 dir=$2 i
    {
        printf '[cdm]\nstatedir = %s/state\n\n[domain]\nhandler = rfc2136\n' "$dir"
        printf 'server = 127.0.0.1:%s\nkeyname = %s\nkeyalgorithm = hmac-sha256\nsecret = %s\n' \
            "$KNOT_PORT" "$KNOT_KEYNAME" "$KNOT_SECRET"
        printf 'nameservers = 127.0.0.1:%s\n\n' "$KNOT_PORT"
        printf '[cert]\nca = %s\ncacert = %s\nkeytype = ecdsa-p256\ndestination = %s/certs\nemail = admin@%s\n' \
            "$PEBBLE_DIR_URL" "$PEBBLE_CACERT" "$dir" "$ZONE"
        for i in $(seq "$n"); do
            printf '\n[cert:c%s]\n[domain:n%s.%s]\ncert = c%s\n' "$i" "$i" "$ZONE" "$i"
        done
    } >"$dir/cdm.conf"
    chmod 600 "$dir/cdm.conf"
}

# run_timed OUT CMD...: runs CMD, writes "wall_s cpu_s" to OUT; returns CMD's status.
if [ -x /usr/bin/time ]; then
    TIMER="/usr/bin/time"
    run_timed() {
        local out=$1 start end rc=0
        shift
        start=$(date +%s%N)
        /usr/bin/time -f '%U %S' -o "$out.time" "$@" || rc=$?
        end=$(date +%s%N)
        # /usr/bin/time prepends "Command exited with non-zero status" on failure
        awk -v w="$(( end - start ))" 'END { printf "%.3f %.3f\n", w / 1e9, $1 + $2 }' "$out.time" >"$out"
        return "$rc"
    }
else
    TIMER="bash times"
    run_timed() {
        local out=$1 start end rc=0 t
        shift
        start=$(date +%s%N)
        # children's user and sys time from `times` in a subshell that runs only CMD
        t=$( ( "$@" >&2 || exit $?; times ) | tail -1) || rc=$?
        end=$(date +%s%N)
        awk -v w="$(( end - start ))" -v t="$t" 'BEGIN {
            split(t, a, " "); c = 0
            for (i = 1; i <= 2; i++) { split(a[i], m, "m"); sub("s", "", m[2]); c += m[1] * 60 + m[2] }
            printf "%.3f %.3f\n", w / 1e9, c }' >"$out"
        return "$rc"
    }
fi

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A WALL_MED
ROWS=()
for n in $COUNTS; do
    walls=() cpus=()
    for rep in $(seq "$REPS"); do
        dir="$WORK/n$n-r$rep"
        mkdir -p "$dir"
        config "$n" "$dir"
        before=$(pebble_orders)
        if ! run_timed "$dir/times" "$BIN" --prepare "$dir/cdm.conf" >"$dir/log" 2>&1; then
            cat "$dir/log" >&2
            die "N=$n run $rep: --prepare failed"
        fi
        orders=$(( $(pebble_orders) - before ))
        issued=$(find "$dir/state/certs" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | wc -l)
        [ "$orders" = "$n" ] || die "N=$n run $rep: $orders orders at Pebble"
        [ "$issued" = "$n" ] || die "N=$n run $rep: $issued certificates in the state directory"
        read -r wall cpu <"$dir/times"
        echo "   N=$n run $rep: wall ${wall} s, cpu ${cpu} s" >&2
        grep -h "certificate(s) issued in" "$dir/log" | sed 's/^.*INFO *//; s/^/     /' >&2 || true
        walls+=("$wall") cpus+=("$cpu")
    done
    wmed=$(printf '%s\n' "${walls[@]}" | median)
    cmed=$(printf '%s\n' "${cpus[@]}" | median)
    WALL_MED[$n]=$wmed
    ROWS+=("| $n | $(IFS=/; echo "${walls[*]}" | sed 's|/| / |g') | **$wmed** | $(IFS=/; echo "${cpus[*]}" | sed 's|/| / |g') | **$cmed** |")
done

echo
echo "\`cryptdomainmgr --prepare\`, N certificates (one name each, ecdsa-p256), fresh state directory per run,"
echo "Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?') (PEBBLE_VA_NOSLEEP=1) + Knot $(knotd -V | awk '{print $NF}') on loopback, $(nproc) cores; CPU = user + sys of the process ($TIMER); times in seconds."
echo
echo "| N | wall, $REPS runs | wall median | CPU, $REPS runs | CPU median |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
first=${COUNTS%% *} last=${COUNTS##* }
if [ "$first" != "$last" ]; then
    ratio=$(awk -v a="${WALL_MED[$last]}" -v b="${WALL_MED[$first]}" 'BEGIN { printf "%.2f", a / b }')
    echo
    if awk -v r="$ratio" 'BEGIN { exit !(r < 2) }'; then
        echo "N=$last / N=$first wall median: ${ratio}x (under 2x: the certificates are issued concurrently)"
    else
        echo "N=$last / N=$first wall median: ${ratio}x (2x or more: issuance looks sequential)"
    fi
fi
echo
echo "Orders are polled after 40 ms, then 80 ms, 160 ms, ... (each state anew) unless the CA sends Retry-After;"
echo "the log's \"certificate(s) issued in\" line splits each run's issuance into its steps. CPU time has 10 ms resolution."
