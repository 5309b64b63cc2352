#!/usr/bin/env bash
# Installs what the tests need (Debian packages, only when missing) and runs the
# whole suite: formatting, clippy, unit and integration tests against real
# servers started on loopback (Knot DNS, BIND, Pebble, PowerDNS, nginx, and the
# DKIM signers rspamd and OpenDKIM), checked with independent tools (dig,
# openssl, dkimpy, rspamd's config parser, OpenDKIM's miltertest).
set -euo pipefail
cd "$(dirname "$0")/.."

# binary -> Debian package
packages=(
  "knotd:knot"
  "knotc:knot"
  "kdig:knot-dnsutils"
  "dig:dnsutils"
  "nsupdate:dnsutils"
  "named:bind9"
  "pebble:pebble"
  "openssl:openssl"
  "dkimverify:python3-dkim"
  "/usr/lib/python3/dist-packages/cryptography/__init__.py:python3-cryptography"
  "rspamadm:rspamd"
  "rspamc:rspamd"
  "opendkim:opendkim"
  "miltertest:miltertest"
  "pdns_server:pdns-server"
  "pdnsutil:pdns-server"
  "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql:pdns-backend-sqlite3"
  "sqlite3:sqlite3"
  "nginx:nginx"
  "certbot:certbot"
  "lego:lego"
  "systemd-analyze:systemd"
)

# A binary, or (an entry starting with /) a file a package installs.
have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

missing=()
for entry in "${packages[@]}"; do
  binary=${entry%%:*}
  package=${entry#*:}
  if ! have "$binary" && [[ " ${missing[*]} " != *" $package "* ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Server binaries live in sbin; tests find them there too, this helps the scripts.
export PATH="$PATH:/usr/sbin:/sbin"

echo "==> one crypto library: no ring, no rsa in the dependency tree"
for crate in ring rsa; do
  # `cargo tree -i` prints the crates that pull it in, or nothing (and a
  # warning or an error) when it is not in the tree, for any target.
  if cargo tree --quiet --target all -e normal,build,dev -i "$crate" 2>/dev/null | grep -q .; then
    cargo tree --target all -e normal,build,dev -i "$crate"
    echo "the crate $crate is in the dependency tree again (README, Dependencies)" >&2
    exit 1
  fi
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "==> cargo test"
cargo test --all-targets
