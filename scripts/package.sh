#!/usr/bin/env bash
# Builds the Debian package target/debian/cryptdomainmgr_VERSION_ARCH.deb with
# cargo-deb and checks it with lintian (no errors allowed).
#
# The package holds the release binary, the manual pages cryptdomainmgr(1)
# (generated from the command-line definition) and cryptdomainmgr.conf(5)
# (dist/man/), bash, zsh and fish completions (generated), the systemd service
# and timer (dist/systemd/, not enabled), /etc/cryptdomainmgr/ (mode 0700) with
# a commented configuration as conffile, and the README, SECURITY.md, docs/ and
# the example configuration under /usr/share/doc/cryptdomainmgr/.
#
# What is missing is installed when this runs as root (or with sudo): Debian
# packages with apt-get, cargo-deb with `cargo install --locked`. Otherwise the
# script says exactly what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

assets=target/debian-assets

# binary -> Debian package
tools=(
  "dpkg-deb:dpkg"
  "dpkg-shlibdeps:dpkg-dev"
  "lintian:lintian"
  "gzip:gzip"
  "cc:gcc"
  "cmp:diffutils"
)

root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    root=(sudo)
  else
    root=(none)
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "package.sh: cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi

missing=()
for entry in "${tools[@]}"; do
  binary=${entry%%:*}
  package=${entry#*:}
  if ! command -v "$binary" >/dev/null 2>&1 && [[ " ${missing[*]} " != *" $package "* ]]; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  if [ "${root[*]}" = none ]; then
    echo "package.sh: missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing Debian packages: ${missing[*]}"
  "${root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo deb --version >/dev/null 2>&1; then
  echo "==> installing cargo-deb (cargo install cargo-deb --locked)"
  if ! cargo install cargo-deb --locked; then
    echo "package.sh: cargo-deb could not be installed; install it with: cargo install cargo-deb --locked" >&2
    exit 1
  fi
fi

version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cryptdomainmgr"))' 2>/dev/null ||
  sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
revision=1
# The date of the last commit, so that the same tree makes the same package.
if date_r=$(git log -1 --format=%cD 2>/dev/null) && [ -n "$date_r" ]; then :; else date_r=$(date -R); fi

echo "==> manual page and completions (from src/cli.rs)"
rm -rf "$assets"
cargo run --quiet --example docs -- "$assets"

echo "==> documentation"
mkdir -p "$assets/doc/docs"
for file in README.md SECURITY.md; do
  gzip -9n <"$file" >"$assets/doc/$file.gz"
done
for file in docs/*.md; do
  gzip -9n <"$file" >"$assets/doc/docs/$(basename "$file").gz"
done
cat >"$assets/changelog" <<CHANGELOG
cryptdomainmgr ($version-$revision) unstable; urgency=medium

  * Package of cryptdomainmgr $version, built from the source tree by
    scripts/package.sh.

 -- cryptdomainmgr maintainers <maintainers@users.noreply.r-seed-9bd2827f.example>  $date_r
CHANGELOG

echo "==> cargo deb (release build)"
deb=$(cargo deb --deb-revision "$revision" | tail -n 1)
if [ ! -f "$deb" ]; then
  echo "package.sh: cargo deb did not report the package it built (got: $deb)" >&2
  exit 1
fi

echo "==> lintian $deb"
# Errors fail the build; warnings are shown. Tags that do not apply to this
# package are listed, each with its reason, in dist/debian/lintian-suppressed.
suppressed=$(awk '!/^#/ && NF {print $1}' dist/debian/lintian-suppressed | paste -sd, -)
lintian --fail-on error ${suppressed:+--suppress-tags "$suppressed"} "$deb"

echo "$deb"
