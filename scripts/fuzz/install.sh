#!/usr/bin/env bash
# Installs the fuzzing tool (cargo-fuzz, libFuzzer through Rust's sancov
# instrumentation) into a cache outside the clone, keyed by version, and
# prints the directory holding the `cargo-fuzz` binary. Installs once: later
# calls return at once.
#
# Runs on the stable toolchain: the targets are built with
# `cargo fuzz build --sanitizer none`, which needs no -Z flag (see
# docs/fuzzing.md). Override the cache with FERROCACHE_FUZZ_TOOLS.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
root="${FERROCACHE_FUZZ_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrocache/fuzz-tools-cargo-fuzz-$CARGO_FUZZ_VERSION}"

if [[ -x "$root/bin/cargo-fuzz" ]] && "$root/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\b"; then
  echo "$root/bin"
  exit 0
fi

mkdir -p "$root"
echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $root" >&2
nice -n 15 cargo install --locked --quiet --root "$root" --version "$CARGO_FUZZ_VERSION" cargo-fuzz >&2
echo "$root/bin"
