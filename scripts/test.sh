#!/usr/bin/env bash
# Installs what the tests need (Debian packages, only when missing) and runs the
# whole suite: formatting, clippy, unit and integration tests against real
# servers started on loopback (Knot DNS, BIND, Pebble, PowerDNS, nginx, the
# DKIM signers rspamd and OpenDKIM, a validating unbound and Postfix as a DANE
# mail client), checked with independent tools (dig, openssl, dkimpy, rspamd's
# config parser, OpenDKIM's miltertest).
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
  "unbound:unbound"
  "unbound-checkconf:unbound"
  "postfix:postfix"
  "postconf:postfix"
  "etcd:etcd-server"
  "etcdctl:etcd-client"
  "mta-sts-query:postfix-mta-sts-resolver"
  "systemd-analyze:systemd"
  "man:man-db"
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
  # Postfix asks how to configure the system's mail; the tests run their own
  # instances (postfix -c DIR on loopback ports), so the system gets none and
  # no system Postfix starts on port 25.
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Server binaries live in sbin; tests find them there too, this helps the scripts.
export PATH="$PATH:/usr/sbin:/sbin"

echo "==> one crypto library: no ring, no rsa in the dependency tree"
for crate in ring rsa; do
  # `cargo tree -i` prints the crates that pull it in, or nothing (and a
  # warning or an error) when it is not in the tree, for any target.
  if cargo tree --workspace --quiet --target all -e normal,build,dev -i "$crate" 2>/dev/null | grep -q .; then
    cargo tree --workspace --target all -e normal,build,dev -i "$crate"
    echo "the crate $crate is in the dependency tree again (README, Dependencies)" >&2
    exit 1
  fi
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> cargo test"
cargo test --all-targets

echo "==> test hooks stay out of release builds"
# The crash points and the settable clock read these variables; a release
# binary must not know them. The test binary (built with test-hooks above)
# must, or this check would pass for any file.
hooks=(CRYPTDOMAINMGR_CRASH_AT CRYPTDOMAINMGR_TEST_NOW)
for hook in "${hooks[@]}"; do
  if [ "$(grep -c "$hook" target/debug/cryptdomainmgr || true)" = 0 ]; then
    echo "the test build does not contain $hook: the check below cannot work" >&2
    exit 1
  fi
done

echo "==> scripts/package.sh"
scripts/package.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb=$(ls target/debian/cryptdomainmgr_"$version"-*_"$(dpkg --print-architecture)".deb)

for binary in target/release/cryptdomainmgr; do
  for hook in "${hooks[@]}"; do
    if [ "$(grep -c "$hook" "$binary" || true)" != 0 ]; then
      echo "$binary contains $hook: the test-hooks feature is in a release build" >&2
      exit 1
    fi
  done
done

# The size budget of the installed binary (README, "Build"), measured where it
# was set: x86_64 with packed relocations.
if [ "$(uname -m)" = x86_64 ] && readelf -d target/release/cryptdomainmgr | grep RELR >/dev/null; then
  size=$(stat -c %s target/release/cryptdomainmgr)
  echo "==> release binary: $size bytes (budget 12000000)"
  if [ "$size" -gt 12000000 ]; then
    echo "the release binary is $size bytes, over the 12 MB budget; see README, Build" >&2
    exit 1
  fi
fi

echo "==> the files of $deb"
# dpkg-deb -c lists ./path (directories end in /); compare the files.
listed=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort)
expected=$(
  {
    printf '%s\n' \
      /usr/bin/cryptdomainmgr \
      /usr/share/man/man1/cryptdomainmgr.1.gz \
      /usr/share/man/man5/cryptdomainmgr.conf.5.gz \
      /usr/share/bash-completion/completions/cryptdomainmgr \
      /usr/share/zsh/vendor-completions/_cryptdomainmgr \
      /usr/share/fish/vendor_completions.d/cryptdomainmgr.fish \
      /usr/lib/systemd/system/cryptdomainmgr.service \
      /usr/lib/systemd/system/cryptdomainmgr.timer \
      /etc/cryptdomainmgr/cryptdomainmgr.conf \
      /usr/share/doc/cryptdomainmgr/README.md.gz \
      /usr/share/doc/cryptdomainmgr/SECURITY.md.gz \
      /usr/share/doc/cryptdomainmgr/changelog.Debian.gz \
      /usr/share/doc/cryptdomainmgr/copyright \
      /usr/share/doc/cryptdomainmgr/examples/mydomains.conf
    for file in docs/*.md; do
      echo "/usr/share/doc/cryptdomainmgr/docs/$(basename "$file").gz"
    done
  } | sort
)
if [ "$listed" != "$expected" ]; then
  diff <(echo "$expected") <(echo "$listed") >&2 || true
  echo "the package's files differ from the expected ones (< expected, > in the package)" >&2
  exit 1
fi
# A binary with packed relocations runs only with the loader of glibc 2.36 or
# later (build.rs); dpkg-shlibdeps does not see that, so the package says it.
if readelf -V target/release/cryptdomainmgr | grep GLIBC_ABI_DT_RELR >/dev/null; then
  dpkg-deb -f "$deb" Depends | grep -E 'libc6 \(>= 2\.(3[6-9]|[4-9][0-9])' >/dev/null || {
    echo "the binary needs glibc 2.36 (DT_RELR), the package depends on: $(dpkg-deb -f "$deb" Depends)" >&2
    exit 1
  }
fi
dpkg-deb -I "$deb" conffiles | grep -qx /etc/cryptdomainmgr/cryptdomainmgr.conf || {
  echo "the example configuration is not a conffile" >&2
  exit 1
}

echo "==> install, use and purge $deb"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
if dpkg -s cryptdomainmgr >/dev/null 2>&1; then
  echo "cryptdomainmgr is already installed on this machine; not touching it" >&2
  exit 1
fi
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "./$deb" >/dev/null
/usr/bin/cryptdomainmgr --version | grep -qx "cryptdomainmgr $version" || {
  echo "cryptdomainmgr --version: $(/usr/bin/cryptdomainmgr --version)" >&2
  exit 1
}
man -w cryptdomainmgr >/dev/null
man -w 5 cryptdomainmgr.conf >/dev/null
bash -n /usr/share/bash-completion/completions/cryptdomainmgr
[ "$(stat -c %a /etc/cryptdomainmgr)" = 700 ] || {
  echo "/etc/cryptdomainmgr has mode $(stat -c %a /etc/cryptdomainmgr), not 700" >&2
  exit 1
}
# The installed units, as installed (with their man pages now present).
out=$(systemd-analyze verify /usr/lib/systemd/system/cryptdomainmgr.service /usr/lib/systemd/system/cryptdomainmgr.timer 2>&1) &&
  [ -z "$out" ] || {
  echo "systemd-analyze verify: $out" >&2
  exit 1
}
# The packaged configuration is valid as it is.
/usr/bin/cryptdomainmgr --check /etc/cryptdomainmgr/ >/dev/null
for hook in "${hooks[@]}"; do
  if [ "$(grep -c "$hook" /usr/bin/cryptdomainmgr || true)" != 0 ]; then
    echo "/usr/bin/cryptdomainmgr contains $hook" >&2
    exit 1
  fi
done
# The state directory the service would have made, to see purge remove it.
"${sudo[@]}" install -d -m 0700 /var/lib/cryptdomainmgr
"${sudo[@]}" touch /var/lib/cryptdomainmgr/state.json
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get purge -y -qq cryptdomainmgr >/dev/null
left=()
for path in $listed /etc/cryptdomainmgr /var/lib/cryptdomainmgr /usr/share/doc/cryptdomainmgr; do
  [ -e "$path" ] && left+=("$path")
done
if ((${#left[@]})) || dpkg -s cryptdomainmgr >/dev/null 2>&1; then
  echo "left after apt-get purge: ${left[*]} $(dpkg -s cryptdomainmgr 2>/dev/null | grep Status)" >&2
  exit 1
fi
echo "==> all checks passed"
