#!/usr/bin/env bash
# Benchmark (not a test) of DH parameter generation: the program's own
# generator (`[dhparam] handler = openssl`, run through the example binary
# `examples/dhparam.rs`) against `openssl dhparam BITS`, REPS runs each,
# interleaved so that both see the same machine load. Every output is checked
# with `openssl dhparam -check`. Prints each run's wall time, the medians and
# their ratio (ours / openssl) as a markdown table.
#
# Safe-prime search is a random walk: a single run takes anywhere from a few
# seconds to minutes, so only medians over several runs compare.
#
# Usage: scripts/bench-dhparam.sh   (environment: BITS=2048 REPS=7)
# Needs: cargo, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

BITS=${BITS:-2048}
REPS=${REPS:-7}

die() { echo "bench-dhparam: $*" >&2; exit 1; }
for tool in cargo openssl; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

echo "== build (cargo build --release --example dhparam)" >&2
cargo build --release --quiet --example dhparam
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/dhparam"
[ -x "$BIN" ] || die "example binary not found at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-bench-dhparam.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# timed OUT CMD...: runs CMD with stdout to OUT, prints the wall time in ms,
# and checks the parameters in OUT.
timed() {
    local out=$1 start end
    shift
    start=$(date +%s%N)
    "$@" >"$out" 2>"$WORK/stderr" || die "$* failed: $(cat "$WORK/stderr")"
    end=$(date +%s%N)
    openssl dhparam -check -noout -in "$out" >/dev/null 2>&1 || die "$* wrote parameters that fail openssl dhparam -check"
    echo $(((end - start) / 1000000))
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }
seconds() { awk -v ms="$1" 'BEGIN {printf "%.1f", ms / 1000}'; }

ours=() theirs=()
for i in $(seq "$REPS"); do
    ours+=("$(timed "$WORK/ours.pem" "$BIN" "$BITS")")
    theirs+=("$(timed "$WORK/openssl.pem" openssl dhparam "$BITS")")
    echo "== run $i/$REPS: ours $(seconds "${ours[-1]}") s, openssl $(seconds "${theirs[-1]}") s" >&2
done

m_ours=$(echo "${ours[*]}" | median)
m_theirs=$(echo "${theirs[*]}" | median)
list() { local out="" v; for v in "$@"; do out+="$(seconds "$v") "; done; echo "${out% }"; }

echo
echo "DH parameters, $BITS bits, $REPS runs each, $(nproc) cores, $(openssl version | cut -d' ' -f1-2)"
echo
echo "| generator | runs (s) | median (s) |"
echo "| --- | --- | ---: |"
echo "| cryptdomainmgr | $(list "${ours[@]}") | $(seconds "$m_ours") |"
echo "| openssl dhparam | $(list "${theirs[@]}") | $(seconds "$m_theirs") |"
echo
awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN {printf "ratio of medians (ours / openssl): %.2f\n", a / b}'
