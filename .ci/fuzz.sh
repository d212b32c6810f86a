#!/usr/bin/env bash
# Fuzz smoke: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 30) seconds each, on a
# corpus that starts from fuzz/seeds/<target>; fails on any crash, panic, leak or timeout.
#
#   bash .ci/fuzz.sh                       # what .ci/run runs
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh      # longer, locally
#   FUZZ_SANITIZER=none bash .ci/fuzz.sh   # without AddressSanitizer: several times faster
#
# Stable rustc builds the targets with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked cargo-fuzz --version 0.13.2
fi

cd fuzz
targets=$(cargo fuzz list)
echo "==> cargo fuzz build -s $sanitizer"
cargo fuzz build -s "$sanitizer"

summary=""
for target in $targets; do
  mkdir -p "corpus/$target" "seeds/$target"
  log="$(mktemp)"
  echo "==> $target: ${seconds}s"
  if ! cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 200 "$log"
    echo "FUZZ: $target crashed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  corpus=$(find "corpus/$target" -type f | wc -l)
  line="$target: ${runs:-?} executions (${rate:-?}/s), 0 crashes, corpus $corpus files"
  echo "$line"
  summary+="$line"$'\n'
  rm -f "$log"
done

printf '\n==> fuzz smoke passed\n%s' "$summary"
