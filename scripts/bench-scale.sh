#!/usr/bin/env bash
# Benchmark (not a test) of how the cost grows with size, against one local
# Knot (and Pebble for certificates), release build:
#   update: ZONES zones x 10 names each (A, AAAA, MX), for ZONES in 10 100 1000;
#           a first run (everything new) and the median of NOOP_RUNS no-op runs,
#           for each Knot journal mode in JOURNAL_MODES (robust: Knot's default,
#           every UPDATE synced to disk before it is answered; asynchronous);
#   certs:  CERTS certificates of one name each, spread over 10 zones, for CERTS
#           in 1 10 100; CERT_REPS times (fresh state directory each) a first
#           `--auto` (new account, orders, deploy) and a no-op `--auto`, medians.
# For each: wall time, CPU time (user + system), peak RSS of the program, the
# DNS messages Knot answered (its statistics module) and the ACME requests
# Pebble logged.
#
# Usage: scripts/bench-scale.sh   (environment: ZONE_SIZES="10 100 1000"
#        JOURNAL_MODES="robust asynchronous" CERT_COUNTS="1 10 100" NOOP_RUNS=5
#        CERT_REPS=3 KEEP=1; CDM_BIN=PATH runs that binary instead of building one)
# Needs: cargo, knotd, knotc, dig, python3, pebble, openssl (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

ZONE_SIZES=${ZONE_SIZES:-"10 100 1000"}
CERT_COUNTS=${CERT_COUNTS:-"1 10 100"}
NOOP_RUNS=${NOOP_RUNS:-5}
JOURNAL_MODES=${JOURNAL_MODES:-"robust asynchronous"}
CERT_REPS=${CERT_REPS:-3}
export KNOT_KEYNAME=cdm-bench-key
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
PATH="$PATH:/usr/sbin:/sbin"

die() { echo "bench-scale: $*" >&2; exit 1; }
for tool in cargo knotd knotc dig python3 pebble openssl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/test.sh installs knot, knot-dnsutils, dnsutils, pebble, openssl)"
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=$(release_binary) || die "no binary to measure"

# shellcheck source=scripts/knot-lib.sh
. scripts/knot-lib.sh
# shellcheck source=scripts/pebble-lib.sh
. scripts/pebble-lib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-bench-scale.XXXXXX")
cleanup() {
    pebble_stop
    knot_stop
    if [ -n "${KEEP:-}" ]; then echo "bench-scale: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# measure LOG ARGS...: runs the binary; sets WALL_MS, CPU_S, RSS_MB, RC.
measure() {
    local log=$1
    shift
    read -r WALL_MS CPU_S RSS_MB RC < <(python3 - "$log" "$BIN" "$@" <<'PY'
import resource, subprocess, sys, time
log = open(sys.argv[1], "w")
start = time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
wall = (time.monotonic() - start) * 1000
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.0f} {u.ru_utime + u.ru_stime:.2f} {u.ru_maxrss / 1024:.0f} {rc}")
PY
)
    [ "$RC" = 0 ] || { echo "   !! exit $RC, see $log:" >&2; grep -m3 ERROR "$log" >&2 || true; }
}

median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

SOA_BODY="@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300
@ 3600 IN NS ns1
ns1 3600 IN A 127.0.0.1"

provider_keys() {
    printf '[domain]\nhandler = rfc2136\nserver = 127.0.0.1:%s\nkeyname = %s\n' "$KNOT_PORT" "$KNOT_KEYNAME"
    printf 'keyalgorithm = hmac-sha256\nsecret = %s\nnameservers = 127.0.0.1:%s\n' "$KNOT_SECRET" "$KNOT_PORT"
}

printf '\n| zones x 10 names | Knot journal | run | wall ms | CPU s | peak RSS MB | SOA lookups+queries | AXFR | UPDATE |\n'
printf '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for mode in $JOURNAL_MODES; do
for zones in $ZONE_SIZES; do
    dir="$WORK/update-$mode-$zones"
    names=$(seq 1 "$zones" | sed 's/^/z/; s/$/.test/' | tr '\n' ' ')
    KNOT_JOURNAL_MODE=$mode knot_start "$dir/knot" "$names" "$SOA_BODY" || die "knotd did not start"
    conf="$dir/cdm.conf"
    {
        printf '[cdm]\nstatedir = %s/state\n\n' "$dir"
        provider_keys
        i=0
        for zone in $names; do
            i=$((i + 1))
            for n in $(seq 1 10); do
                printf '\n[domain:h%s.%s]\nip4 = 192.0.2.%s\nip6 = 2001:db8::%x\nmx.10 = mail.%s\n' \
                    "$n" "$zone" $(( i % 250 + 1 )) "$n" "$zone"
            done
        done
    } >"$conf"
    chmod 600 "$conf"
    q0=$(knot_messages query) a0=$(knot_messages axfr) u0=$(knot_messages update)
    measure "$dir/first.log" --update "$conf"
    printf '| %s | %s | first | %s | %s | %s | %s | %s | %s |\n' "$zones" "$mode" "$WALL_MS" "$CPU_S" "$RSS_MB" \
        $(( $(knot_messages query) - q0 )) $(( $(knot_messages axfr) - a0 )) $(( $(knot_messages update) - u0 ))
    walls="" cpus="" rsss=""
    q0=$(knot_messages query) a0=$(knot_messages axfr) u0=$(knot_messages update)
    for _ in $(seq "$NOOP_RUNS"); do
        measure "$dir/noop.log" --update "$conf"
        walls="$walls $WALL_MS" cpus="$cpus $CPU_S" rsss="$rsss $RSS_MB"
    done
    printf '| %s | %s | no-op (median of %s) | %s | %s | %s | %s | %s | %s |\n' "$zones" "$mode" "$NOOP_RUNS" \
        "$(echo $walls | median)" "$(echo $cpus | median)" "$(echo $rsss | median)" \
        $(( ($(knot_messages query) - q0) / NOOP_RUNS )) $(( ($(knot_messages axfr) - a0) / NOOP_RUNS )) \
        $(( ($(knot_messages update) - u0) / NOOP_RUNS ))
    knot_stop
done
done

printf '\n| certificates | run | wall ms | CPU s | peak RSS MB | ACME requests | orders | UPDATE |\n'
printf '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for certs in $CERT_COUNTS; do
    dir="$WORK/certs-$certs"
    names=$(seq 1 10 | sed 's/^/c/; s/$/.test/' | tr '\n' ' ')
    knot_start "$dir/knot" "$names" "$SOA_BODY" || die "knotd did not start"
    PEBBLE_VA_NOSLEEP=1 pebble_start "$dir/pebble" "127.0.0.1:$KNOT_PORT" || die "pebble did not start"
    # Each repetition: a fresh state directory (new account, every order new),
    # then a no-op run on it.
    fw="" fc="" fr="" freq="" ford="" fupd="" nw="" nc="" nr="" nreq="" nord="" nupd=""
    for rep in $(seq "$CERT_REPS"); do
        run="$dir/rep$rep"
        mkdir -p "$run"
        conf="$run/cdm.conf"
        {
            printf '[cdm]\nstatedir = %s/state\n\n' "$run"
            provider_keys
            printf '\n[cert]\nca = %s\ncacert = %s\nkeytype = ecdsa-p256\ndestination = %s/certs\n' \
                "$PEBBLE_DIR_URL" "$PEBBLE_CACERT" "$run"
            for i in $(seq 1 "$certs"); do
                printf '\n[cert:n%s]\n[domain:n%s.c%s.test]\ncert = n%s\n' "$i" "$i" $(( i % 10 + 1 )) "$i"
            done
        } >"$conf"
        chmod 600 "$conf"
        r0=$(pebble_requests) o0=$(pebble_orders) u0=$(knot_messages update)
        measure "$run/first.log" --auto "$conf"
        fw="$fw $WALL_MS" fc="$fc $CPU_S" fr="$fr $RSS_MB" freq="$freq $(( $(pebble_requests) - r0 ))"
        ford="$ford $(( $(pebble_orders) - o0 ))" fupd="$fupd $(( $(knot_messages update) - u0 ))"
        r0=$(pebble_requests) o0=$(pebble_orders) u0=$(knot_messages update)
        measure "$run/noop.log" --auto "$conf"
        nw="$nw $WALL_MS" nc="$nc $CPU_S" nr="$nr $RSS_MB" nreq="$nreq $(( $(pebble_requests) - r0 ))"
        nord="$nord $(( $(pebble_orders) - o0 ))" nupd="$nupd $(( $(knot_messages update) - u0 ))"
        echo "   $certs certificates, run $rep: first$fw ms, no-op$nw ms" >&2
        grep -h "certificate(s) issued in" "$run/first.log" | sed 's/^.*INFO *//; s/^/     /' >&2 || true
    done
    printf '| %s | first (median of %s:%s) | %s | %s | %s | %s | %s | %s |\n' "$certs" "$CERT_REPS" "$fw" \
        "$(echo $fw | median)" "$(echo $fc | median)" "$(echo $fr | median)" \
        "$(echo $freq | median)" "$(echo $ford | median)" "$(echo $fupd | median)"
    printf '| %s | no-op (median of %s) | %s | %s | %s | %s | %s | %s |\n' "$certs" "$CERT_REPS" \
        "$(echo $nw | median)" "$(echo $nc | median)" "$(echo $nr | median)" \
        "$(echo $nreq | median)" "$(echo $nord | median)" "$(echo $nupd | median)"
    pebble_stop
    knot_stop
done
printf '\n(%s, load average %s)\n' "$(nproc) cores" "$(cut -d' ' -f1-3 /proc/loadavg)"
