# Shell helpers to run a throw-away Knot DNS (knotd) on loopback, sourced by
# scripts/bench-update.sh and scripts/demo.sh. The same setup as
# tests/support/knot.rs: a temporary directory, a free loopback port, a TSIG key
# (hmac-sha256, random secret) allowed to update and transfer the zone, updates
# kept in the journal (`zonefile-sync: -1`), readiness = an SOA query answered.
#
#   knot_start DIR ZONE ZONE_BODY   # ZONE_BODY: zone-file text relative to $ORIGIN ZONE;
#                                   # ZONE may be a space-separated list (one body for all)
#   ... $KNOT_PORT $KNOT_KEYNAME $KNOT_SECRET $KNOT_PID ...
#   knot_messages update            # messages knotd answered, by operation
#   knot_stop                       # by pid; call it from an EXIT trap too
#
# Needs knotd, knotc, dig and python3 (to pick a free port).

KNOT_KEYNAME=${KNOT_KEYNAME:-cdm-key}
KNOT_WORKERS=${KNOT_WORKERS:-1}
# robust (Knot's default: every change synced to disk before it is answered) or
# asynchronous (synced in the background).
KNOT_JOURNAL_MODE=${KNOT_JOURNAL_MODE:-robust}
KNOT_PID=""
KNOT_PORT=""
KNOT_SECRET=""
PATH="$PATH:/usr/sbin:/sbin"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pid PID: SIGTERM, up to 5 s for it to end, then SIGKILL; by pid, never by name.
stop_pid() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    local _
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# knot_messages OPERATION: how many OPERATION messages (query, update, axfr)
# knotd has answered so far (its statistics module).
knot_messages() {
    # A counter that has counted nothing yet is not listed: that is 0.
    { knotc -c "$KNOT_DIR/knot.conf" stats mod-stats 2>/dev/null || true; } \
        | awk -F' = ' -v key="mod-stats.server-operation[$1]" '$1 == key { n += $2 } END { print n + 0 }'
}

knot_stop() {
    stop_pid "$KNOT_PID"
    KNOT_PID=""
}

# knot_soa_answered ZONE: the server answers an SOA query for ZONE (7 fields).
knot_soa_answered() {
    [ "$(dig +short +norec +time=1 +tries=1 @127.0.0.1 -p "$KNOT_PORT" "$1" SOA 2>/dev/null | wc -w)" = 7 ]
}

knot_start() {
    local dir=$1 zones=$2 body=$3 attempt deadline zone last
    KNOT_DIR=$dir
    mkdir -p "$dir/run" "$dir/db" "$dir/zones"
    KNOT_SECRET=$(head -c 32 /dev/urandom | base64)
    for zone in $zones; do
        printf '$ORIGIN %s.\n$TTL 300\n%s\n' "$zone" "$body" >"$dir/zones/$zone.zone"
        last=$zone
    done
    for attempt in 1 2 3 4 5; do
        KNOT_PORT=$(free_port)
        cat >"$dir/knot.conf" <<EOF
server:
  rundir: "$dir/run"
  listen: 127.0.0.1@$KNOT_PORT
  udp-workers: $KNOT_WORKERS
  tcp-workers: $KNOT_WORKERS
  background-workers: 1
control:
  listen: "$dir/run/knot.sock"
database:
  storage: "$dir/db"
  journal-db-mode: $KNOT_JOURNAL_MODE
log:
  - target: stderr
    any: info
key:
  - id: $KNOT_KEYNAME
    algorithm: hmac-sha256
    secret: $KNOT_SECRET
acl:
  - id: acl_update
    key: $KNOT_KEYNAME
    action: [update, transfer]
mod-stats:
  - id: counts
    server-operation: on
    request-protocol: off
    request-bytes: off
    response-bytes: off
    response-code: off
    reply-nodata: off
template:
  - id: default
    global-module: mod-stats/counts
    storage: "$dir/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    acl: [acl_update]
zone:
$(for zone in $zones; do printf '  - domain: %s\n    file: %s.zone\n' "$zone" "$zone"; done)
EOF
        chmod 600 "$dir/knot.conf"
        if ! knotc -c "$dir/knot.conf" conf-check >"$dir/conf-check.log" 2>&1; then
            cat "$dir/conf-check.log" >&2
            echo "knotc conf-check failed for $dir/knot.conf" >&2
            return 1
        fi
        knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 </dev/null &
        KNOT_PID=$!
        deadline=$(( $(date +%s) + 15 ))
        while [ "$(date +%s)" -le "$deadline" ]; do
            kill -0 "$KNOT_PID" 2>/dev/null || break
            knot_soa_answered "$last" && return 0
            sleep 0.05
        done
        echo "knotd attempt $attempt on port $KNOT_PORT failed:" >&2
        tail -5 "$dir/knotd.log" >&2
        knot_stop
    done
    echo "knotd did not start" >&2
    return 1
}
