#!/usr/bin/env bash
# Benchmark (not a test) of `cryptdomainmgr --auto` with nothing due: 10
# certificates and 10 DKIM sections over names in 3 zones, against a local
# Pebble and Knot. The first runs issue, publish and (with the program's clock
# moved, see below) deploy everything; then RUNS more `--auto` runs find
# nothing due. For those it reports wall time (min / median / max) and the
# messages sent, counted from `-v` debug lines: SOA queries, AXFRs, UPDATEs,
# queries to authoritative servers, and ACME requests (Pebble's log).
#
# The release binary has no test hooks, so the settling runs use a test build
# (`cargo build` with the `test-hooks` feature) to move its clock past the DNS
# waits; the timed runs use the release build on the same state.
#
# Usage: scripts/bench-auto.sh   (environment: RUNS=10 KEEP=1;
#        CDM_BIN=PATH runs that binary instead of building one)
# Needs: cargo, knotd, knotc, dig, python3, pebble, openssl (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
ZONES="a.test b.test c.test"
export KNOT_KEYNAME=cdm-bench-key
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
PATH="$PATH:/usr/sbin:/sbin"

die() { echo "bench-auto: $*" >&2; exit 1; }
for tool in cargo knotd knotc dig python3 pebble openssl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/test.sh installs knot, knot-dnsutils, dnsutils, pebble, openssl)"
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=$(release_binary) || die "no binary to measure"
echo "== build (a test build that can move its clock)" >&2
cargo build --quiet --features test-hooks
HOOKED="${CARGO_TARGET_DIR:-$PWD/target}/debug/cryptdomainmgr"

# shellcheck source=scripts/knot-lib.sh
. scripts/knot-lib.sh
# shellcheck source=scripts/pebble-lib.sh
. scripts/pebble-lib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-bench-auto.XXXXXX")
cleanup() {
    pebble_stop
    knot_stop
    if [ -n "${KEEP:-}" ]; then echo "bench-auto: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

knot_start "$WORK/knot" "$ZONES" "@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300
@ 3600 IN NS ns1
ns1 3600 IN A 127.0.0.1" || die "knotd did not start"
pebble_start "$WORK/pebble" "127.0.0.1:$KNOT_PORT" || die "pebble did not start"

CONF="$WORK/cdm.conf"
{
    printf '[cdm]\nstatedir = %s/state\n\n[domain]\nhandler = rfc2136\n' "$WORK"
    printf 'server = 127.0.0.1:%s\nkeyname = %s\nkeyalgorithm = hmac-sha256\nsecret = %s\n' \
        "$KNOT_PORT" "$KNOT_KEYNAME" "$KNOT_SECRET"
    printf 'nameservers = 127.0.0.1:%s\n\n' "$KNOT_PORT"
    printf '[cert]\nca = %s\ncacert = %s\nkeytype = ecdsa-p256\ndestination = %s/certs\n\n' \
        "$PEBBLE_DIR_URL" "$PEBBLE_CACERT" "$WORK"
    printf '[dkim]\nhandler = file\nkeytype = ed25519\nkeylocation = %s/dkim\n\n' "$WORK"
    i=0
    for zone in $ZONES; do
        for n in 1 2 3 4; do
            i=$((i + 1))
            [ "$i" -le 10 ] || break
            printf '[cert:c%s]\n[dkim:k%s]\nkeylocation = %s/dkim/k%s\n[domain:n%s.%s]\ncert = c%s\ndkim = auto:k%s\nip4 = 192.0.2.%s\ntlsa.tcp.443 = auto:3:1:1\n\n' \
                "$i" "$i" "$WORK" "$i" "$i" "$zone" "$i" "$i" "$i"
        done
    done
} >"$CONF"
chmod 600 "$CONF"

# Settle: issue, publish, then (an hour later on the program's clock) deploy.
later=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)
"$HOOKED" --auto "$CONF" >"$WORK/settle1.log" 2>&1 || { cat "$WORK/settle1.log" >&2; die "first --auto failed"; }
CRYPTDOMAINMGR_TEST_NOW=$later "$HOOKED" --auto "$CONF" >"$WORK/settle2.log" 2>&1 \
    || { cat "$WORK/settle2.log" >&2; die "second --auto failed"; }
deployed=$(find "$WORK/certs" -mindepth 2 -maxdepth 2 -name cert.pem | wc -l)
[ "$deployed" = 10 ] || die "$deployed certificates deployed after settling"
# The CA has no renewal information: asked once, not again for hours.
"$BIN" --auto "$CONF" >/dev/null 2>&1 || die "a third --auto failed"

count() { grep -c "$2" "$1" || true; }
orders_before=$(pebble_orders)
acme_before=$(pebble_requests)
walls=()
soa=0 axfr=0 update=0 queries=0
for run in $(seq "$RUNS"); do
    log="$WORK/noop$run.log"
    start=$(date +%s%N)
    "$BIN" --auto -v "$CONF" >"$log" 2>&1 || { cat "$log" >&2; die "no-op run $run failed"; }
    end=$(date +%s%N)
    walls+=("$(awk -v ns="$(( end - start ))" 'BEGIN { printf "%.1f", ns / 1e6 }')")
    soa=$(( soa + $(count "$log" "rfc2136: sent QUERY SOA") ))
    axfr=$(( axfr + $(count "$log" "rfc2136: sent AXFR") ))
    update=$(( update + $(count "$log" "rfc2136: sent UPDATE") ))
    queries=$(( queries + $(count "$log" "observe: sent QUERY") ))
done
acme=$(( $(pebble_requests) - acme_before ))
[ "$(pebble_orders)" = "$orders_before" ] || die "a no-op run made an order"

sorted=$(printf '%s\n' "${walls[@]}" | sort -g)
min=$(echo "$sorted" | head -1) max=$(echo "$sorted" | tail -1)
median=$(echo "$sorted" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
per() { awk -v a="$1" -v n="$RUNS" 'BEGIN { printf "%g", a / n }'; }
echo
echo "\`cryptdomainmgr --auto\` with nothing due: 10 certificates (TLSA) and 10 DKIM sections, 10 names in 3 zones,"
echo "Knot $(knotd -V | awk '{print $NF}') and Pebble on loopback, release build, $(nproc) cores, $RUNS runs."
echo
echo "| wall ms min / median / max | SOA queries | AXFR | UPDATE | other DNS queries | ACME requests |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| $min / **$median** / $max | $(per "$soa") | $(per "$axfr") | $(per "$update") | $(per "$queries") | $(per "$acme") |"
echo
echo "Messages per run, counted from \`-v\` debug lines (DNS) and Pebble's request log (ACME)."
