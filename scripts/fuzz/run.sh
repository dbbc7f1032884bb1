#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time (libFuzzer, on the
# stable toolchain: see docs/fuzzing.md). Fails when a target finds a crash,
# a hang or an out-of-memory, and prints the input that triggered it.
#
# Usage: scripts/fuzz/run.sh [seconds-per-target] [target...]
#   seconds-per-target  default 60
#   target              resp_parser, rdb_loader, dump_payload (default: all)
#
# The corpus a run grows is kept in fuzz/work/corpus/<target>/ (ignored by
# git), so later runs start where earlier ones stopped; the committed seeds
# in fuzz/corpus/<target>/ are only read. Findings go to
# fuzz/artifacts/<target>/. To turn one into a regression, minimize it,
# copy it to fuzz/regressions/<target>/ and fix the node (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(resp_parser rdb_loader dump_payload)
fi
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "seconds-per-target must be a number, not '$seconds'" >&2; exit 2; }

started=$(date +%s)
tools="$(scripts/fuzz/install.sh)"
export PATH="$tools:$PATH"
triple="$(rustc -vV | sed -n 's/^host: //p')"

cd fuzz
mkdir -p work
echo "==> building the fuzz targets (cargo fuzz build --sanitizer none; log: fuzz/work/build.log)"
if ! nice -n 15 cargo fuzz build --sanitizer none --target "$triple" >work/build.log 2>&1; then
  tail -40 work/build.log >&2
  echo "fuzz build failed" >&2
  exit 1
fi
grep -E '^\s*Finished' work/build.log | tail -1 || true
built=$(date +%s)

failed=()
summary=()
for target in "${targets[@]}"; do
  binary="target/$triple/release/$target"
  [[ -x "$binary" ]] || { echo "no fuzz target $target" >&2; exit 2; }
  mkdir -p "work/corpus/$target" "artifacts/$target"
  log="work/$target.log"
  echo "==> $target for ${seconds}s (log: fuzz/$log)"
  before=$(find "artifacts/$target" -type f | wc -l)
  status=0
  # -rss_limit_mb bounds the whole process; single allocations above 64 MiB
  # abort through CappedAllocator (fuzz/src/lib.rs). Inputs up to 64 KiB.
  nice -n 15 "$binary" "work/corpus/$target" "corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "work/corpus/$target" -type f | wc -l)
  after=$(find "artifacts/$target" -type f | wc -l)
  if [[ $status -ne 0 || $after -gt $before ]]; then
    failed+=("$target")
    summary+=("$(printf '%-13s FAILED  %s runs, %s/s' "$target" "${runs:-?}" "${rate:-?}")")
    echo "!!! $target failed (exit $status):"
    grep -E "panicked at|^(thread|memory allocation)|ERROR: libFuzzer|SUMMARY" "$log" | head -8 | sed 's/^/    /'
    grep -A1 -E "panicked at" "$log" | grep -v "panicked at" | head -3 | sed 's/^/    /'
    sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | while read -r input; do
      echo "    input: fuzz/$input"
      echo "    replay: fuzz/$binary fuzz/$input"
    done
  else
    summary+=("$(printf '%-13s ok      %s runs, %s/s, corpus %s' "$target" "${runs:-?}" "${rate:-?}" "$corpus")")
  fi
done

finished=$(date +%s)
echo "==> fuzzing summary (build $((built - started))s, total $((finished - started))s)"
printf '    %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
