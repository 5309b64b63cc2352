#!/usr/bin/env bash
# The cryptdomainmgr demo: set the DNS records of a name on a real DNS server,
# then get a TLS certificate for it from a real ACME CA (DNS-01 on that server).
#
# Starts Knot DNS on loopback with the zone example.test (which already holds an
# old A record 198.51.100.7 and an old MX for www), a tiny local "what is my IP"
# HTTP responder for `ip4 = auto`, writes examples/demo.conf.in filled in to a
# temporary directory, then:
#   1. runs --update and shows the log and what the server serves before/after,
#   2. runs --update again: everything "add (exists)", nothing changes,
#   3. runs --update --dry-run with one changed value: the change is printed, not made.
# Then it starts Pebble (Let's Encrypt's ACME test CA) validating DNS-01 against
# that Knot, adds examples/demo-cert.conf.in (one certificate for www and mail)
# and runs the certificate phases:
#   4. --prepare, --status, --rollover: shows the deployed files and checks the
#      certificate with openssl against Pebble's root,
#   5. --prepare --force, --rollover, --cleanup: a new serial, the old version
#      gone, no _acme-challenge record left.
# Everything runs on 127.0.0.1 and is removed on exit.
#
# Usage: scripts/demo.sh   (from any directory; installs knot, knot-dnsutils,
#                           dnsutils, pebble, openssl with apt-get if knotd, dig,
#                           pebble or openssl is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

ZONE=example.test
NAME=www.$ZONE
PUBLIC_IP=203.0.113.42
export PATH="$PATH:/usr/sbin:/sbin"
# The lookup URL is on loopback: never send it to a proxy.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
section() { printf '\n%s==== %s ====%s\n' "$BOLD" "$*" "$PLAIN"; }
die() { echo "demo: $*" >&2; exit 1; }

section "0. Tools"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
packages=()
if ! command -v knotd >/dev/null || ! command -v dig >/dev/null; then
    packages+=(knot knot-dnsutils dnsutils)
fi
command -v python3 >/dev/null || packages+=(python3)
command -v pebble >/dev/null || packages+=(pebble)
command -v openssl >/dev/null || packages+=(openssl)
if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${packages[*]} and no apt-get to install them"
    echo "installing: ${packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
for tool in cargo knotd knotc dig python3 pebble openssl; do
    command -v "$tool" >/dev/null || die "$tool not found (cargo comes with the Rust toolchain, e.g. from rustup)"
done
echo "knotd $(knotd -V | awk '{print $NF}'), $(dig -v 2>&1 | head -1), $(python3 --version), $(openssl version | cut -d' ' -f1-2)"
echo "pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo "at $(command -v pebble)")"

section "1. Build (cargo build --release)"
cargo build --release 2>&1 | tail -2
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/cryptdomainmgr"
[ -x "$BIN" ] || die "binary not found at $BIN"
"$BIN" --version

# shellcheck source=scripts/knot-lib.sh
KNOT_KEYNAME=cdm-demo-key
. scripts/knot-lib.sh
# shellcheck source=scripts/pebble-lib.sh
. scripts/pebble-lib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdm-demo.XXXXXX")
HTTP_PID=""
cleanup() {
    pebble_stop
    knot_stop
    if [ -n "$HTTP_PID" ]; then
        kill "$HTTP_PID" 2>/dev/null || true
        wait "$HTTP_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "2. Knot DNS on loopback with zone $ZONE"
ZONE_BODY="@ 3600 IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 300
@ 3600 IN NS ns1.$ZONE.
ns1 3600 IN A 127.0.0.1
mail 3600 IN A 198.51.100.25
www 300 IN A 198.51.100.7
www 300 IN MX 20 oldmail.$ZONE."
knot_start "$WORK/knot" "$ZONE" "$ZONE_BODY" || die "knotd did not start"
echo "knotd pid $KNOT_PID listening on 127.0.0.1:$KNOT_PORT, TSIG key $KNOT_KEYNAME (update + transfer)"
echo "zone file:"
sed 's/^/    /' "$WORK/knot/zones/$ZONE.zone"

# A "what is my IP" service (like ipv4.icanhazip.com) on a free loopback port.
cat >"$WORK/ipresponder.py" <<'EOF'
import http.server, os, sys
address, port_file = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (address + "\n").encode() if self.path == "/ip" else b"not found\n"
        self.send_response(200 if self.path == "/ip" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
EOF
python3 "$WORK/ipresponder.py" "$PUBLIC_IP" "$WORK/http.port" </dev/null >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
for _ in $(seq 100); do [ -s "$WORK/http.port" ] && break; kill -0 "$HTTP_PID" 2>/dev/null || break; sleep 0.05; done
[ -s "$WORK/http.port" ] || { cat "$WORK/http.log" >&2; die "the IP responder did not start"; }
IP4LOOKUP="http://127.0.0.1:$(cat "$WORK/http.port")/ip"
echo "public-IP responder at $IP4LOOKUP answers $PUBLIC_IP"

CONF="$WORK/demo.conf"
sed -e "s|@STATEDIR@|$WORK/state|" -e "s|@PORT@|$KNOT_PORT|" -e "s|@KEYNAME@|$KNOT_KEYNAME|" \
    -e "s|@SECRET@|$KNOT_SECRET|" -e "s|@IP4LOOKUP@|$IP4LOOKUP|" examples/demo.conf.in >"$CONF"
chmod 600 "$CONF"

# What the server serves for the demo name, asked with dig (not with our program).
show_dns() {
    local owner type out
    for spec in "$NAME A" "$NAME AAAA" "$NAME MX" "$NAME TXT" "$NAME CAA" \
                "_imap._tcp.$NAME SRV" "_submission._tcp.$NAME SRV" "_dmarc.$NAME TXT"; do
        read -r owner type <<<"$spec"
        out=$(dig +noall +answer +norec @127.0.0.1 -p "$KNOT_PORT" "$owner" "$type")
        if [ -n "$out" ]; then
            sed 's/^/    /' <<<"$out"
        else
            printf '    %-40s (no %s record)\n' "$owner." "$type"
        fi
    done
}
serial() { dig +short +norec @127.0.0.1 -p "$KNOT_PORT" "$ZONE" SOA | awk '{print $3}'; }

section "3. What the server serves before (dig @127.0.0.1 -p $KNOT_PORT)"
show_dns | tee "$WORK/before.txt"
echo "    SOA serial $(serial)"

section "4. The configuration (examples/demo.conf.in, filled in)"
sed -e 's/^secret = .*/secret = ***  (random, made for this demo)/' "$CONF" | grep -v '^#' | cat -s

section "5. cryptdomainmgr --update $CONF"
"$BIN" --update "$CONF" 2>&1 || die "--update failed"

section "6. What the server serves after"
show_dns | tee "$WORK/after1.txt"
SERIAL1=$(serial)
echo "    SOA serial $SERIAL1"
echo
echo "changes seen by dig:"
diff "$WORK/before.txt" "$WORK/after1.txt" | grep '^[<>]' | grep -v '(no [A-Z]* record)' | sed -e 's/^</    removed:/' -e 's/^>/    added:  /' || true
grep -q "A[[:space:]]*$PUBLIC_IP\$" "$WORK/after1.txt" || die "the A record $PUBLIC_IP (ip4 = auto) is not served"
grep -q '198\.51\.100\.7' "$WORK/after1.txt" && die "the old A record 198.51.100.7 is still served"

section "7. cryptdomainmgr --update again: nothing to do"
"$BIN" --update "$CONF" >"$WORK/run2.log" 2>&1 || { cat "$WORK/run2.log"; die "second --update failed"; }
cat "$WORK/run2.log"
show_dns >"$WORK/after2.txt"
SERIAL2=$(serial)
if grep -q 'add (new)\|delete ' "$WORK/run2.log" || ! cmp -s "$WORK/after1.txt" "$WORK/after2.txt" || [ "$SERIAL1" != "$SERIAL2" ]; then
    die "the second run changed something (serial $SERIAL1 -> $SERIAL2)"
fi
echo
echo "=> every record \"add (exists)\"; dig serves the same records, SOA serial still $SERIAL2 (no UPDATE was sent)"

section "8. --dry-run with one changed value (ip6 = 2001:db8::81)"
echo "\$ cryptdomainmgr --update --dry-run $CONF --config-content '[domain:$NAME]  ip6 = 2001:db8::81'"
"$BIN" --update --dry-run "$CONF" --config-content "[domain:$NAME]  ip6 = 2001:db8::81" 2>&1
echo
echo "the server still serves:"
dig +noall +answer +norec @127.0.0.1 -p "$KNOT_PORT" "$NAME" AAAA | sed 's/^/    /'
[ "$(serial)" = "$SERIAL2" ] || die "--dry-run changed the zone"
echo "=> SOA serial still $(serial): the dry run changed nothing"

section "9. Pebble (ACME test CA) on loopback, validating DNS-01 against this Knot"
pebble_start "$WORK/pebble" "127.0.0.1:$KNOT_PORT" || die "pebble did not start"
echo "pebble pid $PEBBLE_PID: ACME directory $PEBBLE_DIR_URL (HTTPS certificate from a throw-away CA, $PEBBLE_CACERT)"
pebble_get /roots/0 >"$WORK/pebble-root.pem" || die "cannot fetch Pebble's root"
echo "Pebble's issuing root: $(openssl x509 -in "$WORK/pebble-root.pem" -noout -subject)"

CERTDIR="$WORK/certs"
CERTCONF="$WORK/demo-cert.conf"
sed -e "s|@PORT@|$KNOT_PORT|" -e "s|@ACMEDIR@|$PEBBLE_DIR_URL|" -e "s|@ACMECACERT@|$PEBBLE_CACERT|" \
    -e "s|@CERTDIR@|$CERTDIR|" examples/demo-cert.conf.in >"$CERTCONF"
echo
echo "the certificate part of the configuration (examples/demo-cert.conf.in, filled in),"
echo "read after $CONF:"
grep -v '^#' "$CERTCONF" | cat -s | sed 's/^/    /'

acme_txt() {
    local n out
    for n in www.$ZONE mail.$ZONE; do
        out=$(dig +noall +answer +norec @127.0.0.1 -p "$KNOT_PORT" "_acme-challenge.$n" TXT)
        if [ -n "$out" ]; then sed 's/^/    /' <<<"$out"; else printf '    %-40s (no TXT record)\n' "_acme-challenge.$n."; fi
    done
}
cert_serial() { openssl x509 -in "$CERTDIR/$NAME/cert.pem" -noout -serial | cut -d= -f2; }
versions() { find "$CERTDIR/$NAME" -mindepth 1 -maxdepth 1 -name '..*' ! -name '..data' | wc -l; }

section "10. cryptdomainmgr --prepare: order, DNS-01 challenge, new certificate"
"$BIN" --prepare "$CONF" "$CERTCONF" 2>&1 || die "--prepare failed"
[ -e "$CERTDIR" ] && die "--prepare deployed something"
echo
echo "orders Pebble received: $(pebble_orders); nothing deployed yet ($CERTDIR does not exist)"

section "11. cryptdomainmgr --status"
"$BIN" --status "$CONF" "$CERTCONF" 2>&1 || die "--status failed"

section "12. cryptdomainmgr --rollover: deploy"
"$BIN" --rollover "$CONF" "$CERTCONF" 2>&1 || die "--rollover failed"
echo
echo "\$ ls -l $CERTDIR/*/"
ls -l "$CERTDIR"/*/ | sed 's/^/    /'
echo "\$ ls -lL $CERTDIR/$NAME/   (the files behind the links; the key is 0600)"
ls -lL "$CERTDIR/$NAME/" | sed 's/^/    /'
echo
echo "\$ openssl x509 -in $CERTDIR/$NAME/cert.pem -noout -subject -ext subjectAltName -issuer -enddate -serial"
openssl x509 -in "$CERTDIR/$NAME/cert.pem" -noout -subject -ext subjectAltName -issuer -enddate -serial | sed 's/^/    /'
openssl x509 -in "$CERTDIR/$NAME/cert.pem" -noout -ext subjectAltName | grep -q "DNS:mail.$ZONE" \
    || die "mail.$ZONE is not in the certificate"
for n in www.$ZONE mail.$ZONE; do
    echo "\$ openssl verify -CAfile pebble-root.pem -untrusted $n/chain.pem $n/cert.pem"
    openssl verify -CAfile "$WORK/pebble-root.pem" -untrusted "$CERTDIR/$n/chain.pem" "$CERTDIR/$n/cert.pem" \
        | sed 's/^/    /' || die "the certificate of $n does not verify"
done
SERIAL_A=$(cert_serial)

section "13. --prepare --force, --rollover, --cleanup: renew now"
"$BIN" --prepare --force "$CONF" "$CERTCONF" 2>&1 || die "--prepare --force failed"
"$BIN" --rollover "$CONF" "$CERTCONF" 2>&1 || die "second --rollover failed"
SERIAL_B=$(cert_serial)
echo
echo "after the rollover, $CERTDIR/$NAME keeps the old version until cleanup ($(versions) versions):"
ls -la "$CERTDIR/$NAME" | sed 's/^/    /'
[ "$(versions)" = 2 ] || die "expected 2 versions before cleanup"
echo
"$BIN" --cleanup "$CONF" "$CERTCONF" 2>&1 || die "--cleanup failed"
echo
echo "after --cleanup ($(versions) version):"
ls -la "$CERTDIR/$NAME" | sed 's/^/    /'
[ "$(versions)" = 1 ] || die "the old version is still there after cleanup"
echo "certificates kept in the state directory: $(ls "$WORK/state/certs/web" | wc -l)"
[ "$(ls "$WORK/state/certs/web" | wc -l)" = 1 ] || die "old certificates left in the state directory"
openssl verify -CAfile "$WORK/pebble-root.pem" -untrusted "$CERTDIR/$NAME/chain.pem" "$CERTDIR/$NAME/cert.pem" >/dev/null \
    || die "the renewed certificate does not verify"
echo
echo "serial before: $SERIAL_A"
echo "serial now:    $SERIAL_B"
[ "$SERIAL_A" != "$SERIAL_B" ] || die "the serial did not change"
[ "$(cert_serial)" = "$SERIAL_B" ] || die "cleanup changed the deployed certificate"
echo
echo "challenge records left (dig _acme-challenge TXT):"
acme_txt | tee "$WORK/acme.txt"
grep -q 'IN[[:space:]]*TXT' "$WORK/acme.txt" && die "an _acme-challenge TXT record is left"
echo "=> a new certificate is deployed, the old one and every challenge record are gone (orders: $(pebble_orders))"

section "Done"
echo "knotd, pebble and the IP responder are stopped and $WORK removed on exit."
