#!/usr/bin/env bash
# Installs what the tests need (Debian packages, only when missing) and runs the
# whole suite: formatting, clippy, unit and integration tests against real
# servers started on loopback (Knot DNS, Pebble, nginx).
set -euo pipefail
cd "$(dirname "$0")/.."

# binary -> Debian package
packages=(
  "knotd:knot"
  "knotc:knot"
  "kdig:knot-dnsutils"
  "dig:dnsutils"
  "nsupdate:dnsutils"
  "pebble:pebble"
  "openssl:openssl"
  "nginx:nginx"
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

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

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "==> cargo test"
cargo test --all-targets
