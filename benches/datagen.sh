#!/usr/bin/env bash
# Datagen throughput and peak memory at 1 M and 10 M population records (plus 2.5% civil servants),
# Parquet. Usage: benches/datagen.sh [SIZE ...]   e.g. benches/datagen.sh 1000000 10000000 100000000
# Prints one line per size: records, seconds, records/s, peak RSS (from /usr/bin/time when present, else
# the process's own VmHWM report).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
threads="${THREADS:-$(nproc)}"
out="${BENCH_OUT:-${TMPDIR:-/tmp}/khop-bench-datagen}"

cargo build --release --locked -p khop >&2
bin="${CARGO_TARGET_DIR:-target}/release/khop"

printf '%-12s %-12s %10s %14s %12s %8s\n' population records seconds records/s peak_MiB threads
for n in "${sizes[@]}"; do
  rm -rf "$out"
  log=$(mktemp)
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$bin" datagen --population "$n" --seed 7 --out "$out" --threads "$threads" >"$log" 2>"$log.time"
    peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$log.time")
  else
    "$bin" datagen --population "$n" --seed 7 --out "$out" --threads "$threads" >"$log"
    peak_kib=$(( $(sed -n 's/.*peak memory \([0-9]*\) MiB.*/\1/p' "$log") * 1024 ))
  fi
  end=$(date +%s.%N)
  records=$(awk '/records in .* s \(/ {print $1}' "$log")
  awk -v n="$n" -v r="$records" -v s="$start" -v e="$end" -v k="$peak_kib" -v t="$threads" 'BEGIN {
    secs = e - s; printf "%-12d %-12d %10.2f %14.0f %12.0f %8d\n", n, r, secs, r / secs, k / 1024, t }'
  rm -f "$log" "$log.time"
done
rm -rf "$out"
