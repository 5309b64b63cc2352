#!/usr/bin/env bash
# Benchmark (not a test) of what `store = etcd` adds to an `--auto` run with
# nothing due (docs/cluster.md): one etcd member on loopback, a configuration
# with one DH parameter section (no DNS, no CA, so only the store's cost
# differs), RUNS no-op runs with `store = local` and with `store = etcd`,
# interleaved.
#
# Then the time from "rollover allowed" to "all 3 nodes deployed": per round
# (a fresh storeprefix, so a fresh cluster), node a's run coordinates, makes
# the material and deploys it (the run that finds the rollover allowed), then
# nodes b and c each run once, one after the other as their timers would
# start them on their own machines, deploy what the store holds and reload
# their service. With timers every TIMER seconds the others deploy within
# one timer interval plus one such run: the figure is TIMER + the run's
# duration (median over ROUNDS rounds, two follower runs each).
#
# The load average is printed before and after: the machine may be shared.
#
# Usage: scripts/bench-cluster.sh   (environment: RUNS=20 ROUNDS=10 TIMER=60;
#        CDM_BIN=PATH runs that binary instead of building one)
# Needs: cargo, etcd, python3 (scripts/test.sh installs etcd-server).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-10}
TIMER=${TIMER:-60}
PATH="$PATH:/usr/sbin:/sbin"
die() { echo "bench-cluster: $*" >&2; exit 1; }
for tool in cargo etcd python3; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/test.sh installs etcd-server)"
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=$(release_binary) || die "no binary to measure"

T=$(mktemp -d)
ETCD_PID=
cleanup() {
    if [ -n "$ETCD_PID" ]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CLIENT=$(free_port)
PEER=$(free_port)
etcd --name b --data-dir "$T/etcd" \
    --listen-client-urls "http://127.0.0.1:$CLIENT" --advertise-client-urls "http://127.0.0.1:$CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
    --initial-cluster "b=http://127.0.0.1:$PEER" >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$CLIENT/health')" 2>/dev/null && break
    sleep 0.1
done

head -c 32 /dev/urandom | base64 >"$T/store.key"
chmod 600 "$T/store.key"
conf() { # name store-lines
    printf '[cdm]\nstatedir = %s/%s-state\n%s\n[dhparam:web]\nhandler = ffdhe\nfilename = %s/%s-dh.pem\n' \
        "$T" "$1" "$2" "$T" "$1" >"$T/$1.conf"
}
STORE="store = etcd
storeendpoints = http://127.0.0.1:$CLIENT
storesecretfile = $T/store.key"
conf local ""
conf etcd "$STORE
node = a"

ms() { # runs the binary, prints wall milliseconds
    local start end
    start=$(date +%s%N)
    "$BIN" -q --auto "$1" >/dev/null 2>"$T/run.log" || { cat "$T/run.log" >&2; die "--auto $1 failed"; }
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
ms "$T/local.conf" >/dev/null
ms "$T/etcd.conf" >/dev/null

local_times=()
etcd_times=()
for _ in $(seq "$RUNS"); do
    local_times+=("$(ms "$T/local.conf")")
    etcd_times+=("$(ms "$T/etcd.conf")")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d / %d / %d", a[1], a[int((NR+1)/2)], a[NR]}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "no-op --auto, min / median / max of $RUNS (ms):"
echo "  store = local: $(stats "${local_times[@]}")"
echo "  store = etcd:  $(stats "${etcd_times[@]}")"
echo "  difference of medians: $(($(median "${etcd_times[@]}") - $(median "${local_times[@]}"))) ms"

# A node of round $1: its own state, destination and reload command.
node_conf() { # round node
    printf '[cdm]\nstatedir = %s/r%s-%s-state\n%s\nstoreprefix = /bench-%s/\nnode = %s\n[dhparam:web]\nhandler = ffdhe\nfilename = %s/r%s-%s-dh.pem\n[service:web]\nhandler = command\ncommand = /bin/true\ndhparams = web\n' \
        "$T" "$1" "$2" "$STORE" "$1" "$2" "$T" "$1" "$2" >"$T/r$1-$2.conf"
}
coordinator_times=()
follower_times=()
for round in $(seq "$ROUNDS"); do
    for node in a b c; do node_conf "$round" "$node"; done
    coordinator_times+=("$(ms "$T/r$round-a.conf")")
    [ -s "$T/r$round-a-dh.pem" ] || die "round $round: node a deployed nothing"
    for node in b c; do
        follower_times+=("$(ms "$T/r$round-$node.conf")")
        cmp -s "$T/r$round-a-dh.pem" "$T/r$round-$node-dh.pem" || die "round $round: node $node deployed other parameters"
    done
done
fmed=$(median "${follower_times[@]}")
fmax=$(printf '%s\n' "${follower_times[@]}" | sort -n | tail -1)
echo "rollover to all 3 nodes deployed, $ROUNDS rounds (ms, min / median / max):"
echo "  coordinator's run that makes and deploys the material: $(stats "${coordinator_times[@]}")"
echo "  a follower's next run, deploying and reloading: $(stats "${follower_times[@]}")"
echo "  with timers every $TIMER s: at most $TIMER s + $fmed ms (median run; slowest $fmax ms)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
