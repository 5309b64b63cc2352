# Shell helpers to run a throw-away Pebble (Let's Encrypt's ACME test CA) on
# loopback, sourced by scripts/demo.sh and scripts/bench-certs.sh. The same
# setup as tests/support/pebble.rs: Debian's pebble ships neither its TLS
# certificate nor the minica root, so a throw-away CA and a localhost/127.0.0.1
# server certificate are made with openssl; the JSON config listens on free
# loopback ports; DNS-01 is validated against the given DNS server (the
# script's Knot); readiness = the directory answers over HTTPS.
#
#   pebble_start DIR DNSSERVER      # DNSSERVER: 127.0.0.1:PORT
#   ... $PEBBLE_DIR_URL $PEBBLE_CACERT $PEBBLE_MGMT_URL $PEBBLE_PID ...
#   pebble_get PATH                 # GET from the management interface (/roots/0)
#   pebble_orders                   # orders created so far (POST /order-plz in its log)
#   pebble_requests                 # ACME requests so far
#   pebble_stop                     # by pid; call it from an EXIT trap too
#
# Needs pebble, openssl and python3 (HTTPS GETs); source scripts/knot-lib.sh
# first, which provides free_port and stop_pid.

PEBBLE_PID=""
PEBBLE_DIR=""
PEBBLE_PORT=""
PEBBLE_MGMT_PORT=""
PEBBLE_DIR_URL=""
PEBBLE_MGMT_URL=""
PEBBLE_CACERT=""

pebble_stop() {
    stop_pid "$PEBBLE_PID"
    PEBBLE_PID=""
}

# pebble_https_get URL: the body on stdout, trusting only $PEBBLE_CACERT; fails
# unless the answer is 200.
pebble_https_get() {
    python3 - "$1" "$PEBBLE_CACERT" <<'EOF'
import ssl, sys, urllib.request
url, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=ctx))
try:
    with opener.open(url, timeout=2) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.exit(1)
EOF
}

pebble_get() { pebble_https_get "$PEBBLE_MGMT_URL$1"; }

pebble_orders() { grep -c 'POST /order-plz' "$PEBBLE_DIR/pebble.log" || true; }
# pebble_requests: ACME requests so far (every GET, HEAD and POST in its log).
pebble_requests() { grep -cE '(GET|HEAD|POST) /' "$PEBBLE_DIR/pebble.log" || true; }

# The throw-away CA (ca.pem) and server certificate (server.pem, server.key) in $1.
pebble_make_tls_certs() (
    cd "$1" || exit 1
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=test CA for pebble" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" &&
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
) >"$1/openssl.log" 2>&1

pebble_start() {
    local dir=$1 dns=$2 attempt deadline
    mkdir -p "$dir"
    PEBBLE_DIR=$dir
    pebble_make_tls_certs "$dir" || { cat "$dir/openssl.log" >&2; echo "openssl failed" >&2; return 1; }
    PEBBLE_CACERT=$dir/ca.pem
    for attempt in 1 2 3 4 5; do
        PEBBLE_PORT=$(free_port)
        PEBBLE_MGMT_PORT=$(free_port)
        cat >"$dir/pebble-config.json" <<EOF
{"pebble": {
  "listenAddress": "127.0.0.1:$PEBBLE_PORT",
  "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
  "certificate": "$dir/server.pem",
  "privateKey": "$dir/server.key",
  "httpPort": $(free_port),
  "tlsPort": $(free_port),
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false
}}
EOF
        PEBBLE_DIR_URL="https://127.0.0.1:$PEBBLE_PORT/dir"
        PEBBLE_MGMT_URL="https://127.0.0.1:$PEBBLE_MGMT_PORT"
        (cd "$dir" && exec env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
            pebble -config "$dir/pebble-config.json" -dnsserver "$dns") \
            >"$dir/pebble.log" 2>&1 </dev/null &
        PEBBLE_PID=$!
        deadline=$(( $(date +%s) + 20 ))
        while [ "$(date +%s)" -le "$deadline" ]; do
            kill -0 "$PEBBLE_PID" 2>/dev/null || break
            pebble_https_get "$PEBBLE_DIR_URL" >/dev/null 2>&1 && return 0
            sleep 0.1
        done
        echo "pebble attempt $attempt on port $PEBBLE_PORT failed:" >&2
        tail -5 "$dir/pebble.log" >&2
        pebble_stop
    done
    echo "pebble did not start" >&2
    return 1
}
