# Shared by the scripts/bench-*.sh benchmarks; sourced, not run.

# release_binary: prints the path of the binary to measure: $CDM_BIN when it
# is set, else the release build (built first with `cargo build --release`).
# Fails, saying why, when that file is not an executable.
release_binary() {
    local bin
    if [ -n "${CDM_BIN:-}" ]; then
        bin=$CDM_BIN
    else
        echo "== build (cargo build --release)" >&2
        cargo build --release --quiet >&2
        bin="${CARGO_TARGET_DIR:-$PWD/target}/release/cryptdomainmgr"
    fi
    [ -x "$bin" ] || { echo "binary not found at $bin" >&2; return 1; }
    echo "$bin"
}
