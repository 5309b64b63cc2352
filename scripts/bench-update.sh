#!/usr/bin/env bash
# Benchmark (not a test) of `cryptdomainmgr --update` against a local Knot DNS.
#
# Builds the release binary, starts knotd on a free loopback port in a temporary
# directory (own TSIG key, updates kept in the journal), writes a config with
# NAMES names in one zone and 5 records each (A, AAAA, MX, SPF TXT, CAA), runs
# `--update -v` once (everything is new) and then NOOP_RUNS times more (nothing
# to do), and reports the DNS messages sent by type (the program's debug lines
# `rfc2136: sent ...`) and the wall time. Both variants are measured: zone found
# by SOA lookup (no `zone =`) and `zone = example.test` configured. After the
# first run, dig checks that the server serves the records.
#
# Usage: scripts/bench-update.sh   (environment: NAMES=100 NOOP_RUNS=5 KNOT_WORKERS=1 KEEP=1
#                                   to keep the temporary directory with logs;
#                                   CDM_BIN=PATH runs that binary instead of building one)
# Needs: cargo, knotd, knotc, dig, python3 (to find a free port).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-100}
NOOP_RUNS=${NOOP_RUNS:-5}
# knotd worker threads (the test suite uses 1, as here)
export KNOT_WORKERS=${KNOT_WORKERS:-1}
ZONE=example.test
KEYNAME=cdm-bench-key
PATH="$PATH:/usr/sbin:/sbin"

die() { echo "bench-update: $*" >&2; exit 1; }
for tool in cargo knotd knotc dig python3; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/test.sh installs knot, knot-dnsutils, dnsutils)"
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=$(release_binary) || die "no binary to measure"

# shellcheck source=scripts/knot-lib.sh
KNOT_KEYNAME=$KEYNAME
. scripts/knot-lib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-bench.XXXXXX")
cleanup() {
    knot_stop
    if [ -n "${KEEP:-}" ]; then echo "bench-update: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }

# start_knot DIR: a fresh knotd serving a minimal $ZONE from DIR; sets PORT, SECRET.
start_knot() {
    knot_start "$1" "$ZONE" "@ 3600 IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 300
@ 3600 IN NS ns1.$ZONE.
ns1 3600 IN A 127.0.0.1
mail 3600 IN A 192.0.2.25" || die "knotd did not start"
    PORT=$KNOT_PORT
    SECRET=$KNOT_SECRET
}

# write_config FILE STATEDIR WITH_ZONE
write_config() {
    local file=$1 statedir=$2 with_zone=$3 i
    {
        printf '[cdm]\nstatedir = %s\n\n' "$statedir"
        printf '[domain]\nhandler = rfc2136\nserver = 127.0.0.1:%s\nkeyname = %s\n' "$PORT" "$KEYNAME"
        printf 'keyalgorithm = hmac-sha256\nsecret = %s\nttl = 300\n' "$SECRET"
        [ "$with_zone" = yes ] && printf 'zone = %s\n' "$ZONE"
        for i in $(seq 1 "$NAMES"); do
            printf '\n[domain:host%03d.%s]\n' "$i" "$ZONE"
            printf 'ip4 = 192.0.2.%d\n' $(( i % 250 + 1 ))
            printf 'ip6 = 2001:db8::%x\n' "$i"
            printf 'mx = mail.%s\n' "$ZONE"
            printf 'spf = +mx, -all\n'
            printf 'caa = 0 issue letsencrypt.org\n'
        done
    } >"$file"
    chmod 600 "$file"
}

# count LOG WHAT: number of `rfc2136: sent WHAT` debug lines.
count() { grep -c "DEBUG .*rfc2136: sent $2 " "$1" || true; }

# run_update CONFIG LOG: runs --update -v; sets RUN_NS (wall time), RUN_RC (exit
# status) and RUN_ERRS (names whose records were left as they were). A failed run
# is a result, not the end of the benchmark: it is counted and shown.
run_update() {
    local start end
    start=$(now_ns)
    RUN_RC=0
    "$BIN" --update -v "$1" 2>"$2" >/dev/null || RUN_RC=$?
    end=$(now_ns)
    RUN_NS=$(( end - start ))
    RUN_ERRS=$(grep -c 'ERROR .*\[domain:' "$2" || true)
    if [ "$RUN_RC" != 0 ]; then
        echo "   !! run failed (exit $RUN_RC, $RUN_ERRS names failed), e.g.:" >&2
        grep ERROR "$2" | head -3 | sed 's/^/      /' >&2
    fi
}

ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }

# check_served AXFR_FILE: after the first run, what the server serves (dig, and
# AXFR with TSIG); sets SERVED_OK (yes/no) and AXFR_TOTAL.
check_served() {
    local name want got
    SERVED_OK=yes
    for i in 1 $(( (NAMES + 1) / 2 )) "$NAMES"; do
        name=$(printf 'host%03d.%s' "$i" "$ZONE")
        want=$(printf '192.0.2.%d' $(( i % 250 + 1 )))
        got=$(dig +short +norec @127.0.0.1 -p "$PORT" "$name" A)
        [ "$got" = "$want" ] || { echo "   !! dig $name A: want $want, got '$got'" >&2; SERVED_OK=no; }
        got=$(dig +short +norec @127.0.0.1 -p "$PORT" "$name" AAAA | wc -l)
        [ "$got" = 1 ] || { echo "   !! dig $name AAAA: $got records, want 1" >&2; SERVED_OK=no; }
    done
    dig +nocmd +noall +answer -y "hmac-sha256:$KEYNAME:$SECRET" @127.0.0.1 -p "$PORT" "$ZONE" AXFR >"$1"
    local type n
    for type in A AAAA MX TXT CAA; do
        n=$(awk -v t="$type" '$4 == t && $1 ~ /^host[0-9]+\./' "$1" | wc -l)
        [ "$n" = "$NAMES" ] || { echo "   !! AXFR: $n $type records at the host names, want $NAMES" >&2; SERVED_OK=no; }
    done
    AXFR_TOTAL=$(awk '$1 ~ /^host[0-9]+\./' "$1" | wc -l)
}

ROWS=()
bench_variant() {
    local label=$1 with_zone=$2 dir="$WORK/$2"
    mkdir -p "$dir"
    echo "== variant: $label" >&2
    start_knot "$dir/knot"
    write_config "$dir/bench.conf" "$dir/state" "$with_zone"

    run_update "$dir/bench.conf" "$dir/run1.log"
    local first_ms=$(( RUN_NS / 1000000 )) first_failed=0
    [ "$RUN_RC" = 0 ] || first_failed=1
    local s1 a1 u1
    s1=$(count "$dir/run1.log" "QUERY SOA")
    a1=$(count "$dir/run1.log" AXFR)
    u1=$(count "$dir/run1.log" UPDATE)
    local upd_line
    upd_line=$(grep -o 'sent UPDATE [^ ]* ([^)]*)' "$dir/run1.log" | head -1 || true)
    check_served "$dir/axfr.txt"
    echo "   first run: ${first_ms} ms; SOA queries $s1, AXFR $a1, UPDATE $u1 [$upd_line]; served: $AXFR_TOTAL of $(( NAMES * 5 )) records" >&2

    local times=() s2 a2 u2 s2max=0 a2max=0 u2total=0 noop_failed=0 i
    for i in $(seq 1 "$NOOP_RUNS"); do
        run_update "$dir/bench.conf" "$dir/noop$i.log"
        times+=("$RUN_NS")
        [ "$RUN_RC" = 0 ] || noop_failed=$(( noop_failed + 1 ))
        s2=$(count "$dir/noop$i.log" "QUERY SOA")
        a2=$(count "$dir/noop$i.log" AXFR)
        u2=$(count "$dir/noop$i.log" UPDATE)
        (( s2 > s2max )) && s2max=$s2
        (( a2 > a2max )) && a2max=$a2
        u2total=$(( u2total + u2 ))
        if grep -q 'add (new)\|delete ' "$dir/noop$i.log"; then
            echo "   !! no-op run $i changed something: $(grep 'add (new)\|delete ' "$dir/noop$i.log" | head -1)" >&2
        fi
    done
    local sorted min med max
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    min=$(echo "$sorted" | head -1)
    max=$(echo "$sorted" | tail -1)
    med=$(echo "$sorted" | sed -n "$(( (NOOP_RUNS + 1) / 2 ))p")
    echo "   no-op runs ($NOOP_RUNS): min $(ms "$min") ms, median $(ms "$med") ms, max $(ms "$max") ms; SOA queries $s2max, AXFR $a2max, UPDATE $u2total in total; failed $noop_failed" >&2

    # Targets: one AXFR and at most one UPDATE per zone; SOA lookups only
    # without `zone =`; no-op: no UPDATE, under 100 ms; and no run fails.
    local soa_target verdict1 verdict2
    if [ "$with_zone" = yes ]; then soa_target=0; else soa_target="$NAMES"; fi
    verdict1=ok; verdict2=ok
    { (( a1 <= 1 && u1 <= 1 && s1 <= soa_target && first_failed == 0 )) && [ "$SERVED_OK" = yes ]; } || verdict1=MISSED
    { (( a2max <= 1 && u2total == 0 && s2max <= soa_target && med < 100000000 && noop_failed == 0 )); } || verdict2=MISSED
    ROWS+=("| $label | first ($(( NAMES * 5 )) adds) | $s1 | $a1 | $u1 | $first_ms | $first_failed/1 | $verdict1 |")
    ROWS+=("| $label | no-op (min / median / max of $NOOP_RUNS) | $s2max | $a2max | $u2total | $(ms "$min") / $(ms "$med") / $(ms "$max") | $noop_failed/$NOOP_RUNS | $verdict2 |")
    knot_stop
}

bench_variant "no \`zone =\`" no
bench_variant "\`zone = $ZONE\`" yes

cpus=$(nproc 2>/dev/null || echo "?")
echo
echo "### Update benchmark: $NAMES names x 5 records in one zone, Knot $(knotd -V 2>/dev/null | awk '{print $NF}') on loopback, $KNOT_WORKERS TCP worker(s), $cpus CPUs"
echo
echo "| variant | run | SOA queries | AXFR | UPDATE | wall ms | failed runs | target |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
printf '%s\n' "${ROWS[@]}"
echo
echo "Messages counted from \`-v\` debug lines (\`rfc2136: sent ...\`); no-op message counts are the maximum over the runs (UPDATE: the total)."
echo "Targets: first run at most one AXFR and one UPDATE per zone, SOA lookups at most one per zone without \`zone =\` and none with it; no-op run no UPDATE and median under 100 ms; no run fails (a failed run leaves some names unchanged and exits 1)."
