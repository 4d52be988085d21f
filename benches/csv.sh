#!/usr/bin/env bash
# khop link on CSV inputs against the same records in Parquet: how much reading CSV costs.
#
#   benches/csv.sh                 1,000,000 population records, 25,000 civil servants
#   benches/csv.sh POP [CS]        CS defaults to 2.5% of POP
#
# The same seed writes both formats, so both runs link the same records. Each format is linked with
# every core standardising, and with one (`--threads 1`: a worker with a single slot's thread, as the
# compose file gives by default), REPEATS times (default 3), alternating the formats. Prints, per
# format and thread count, the median wall seconds, user and system CPU seconds, peak resident
# memory, and the population's `standardise` stage (summary.json); then whether the pairs files of the
# two formats are the same.
#
# Environment: DATA (default ${TMPDIR:-/tmp}/khop-csv; data is reused when its manifest.json is
# there), SEED (7), REPEATS (3), KHOP (a khop binary to use instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

dataset_sizes 1000000 "$@"
seed="${SEED:-7}"
repeats="${REPEATS:-3}"
is_count "$repeats" || die "REPEATS must be a positive integer, got '$repeats'"
data_root="${DATA:-${TMPDIR:-/tmp}/khop-csv}"
needs_time_and_python

khop=$(khop_binary csv) || exit 1

mkdir -p "$data_root"
data_root=$(cd "$data_root" && pwd)
for format in csv parquet; do
  data="$data_root/pop$pop-cs$cs-seed$seed-$format"
  if [ ! -f "$data/manifest.json" ]; then
    rm -rf "$data"
    echo "csv: generating $pop population and $cs civil-servant records as $format in $data" >&2
    "$khop" datagen --population "$pop" --civil-servants "$cs" --seed "$seed" --format "$format" \
      --out "$data" >/dev/null
  fi
done

results="$data_root/runs.tsv"
: >"$results"
for ((i = 1; i <= repeats; i++)); do
  for threads in 0 1; do
    for format in csv parquet; do
      data="$data_root/pop$pop-cs$cs-seed$seed-$format"
      out="$data_root/out-$format-$threads"
      rm -rf "$out"
      args=()
      [ "$threads" -gt 0 ] && args=(--threads "$threads")
      /usr/bin/time -f "%e %U %S %M" -o "$data_root/time" "$khop" link "$data/job.toml" \
        --output "$out" "${args[@]}" >"$data_root/link.log" 2>&1 ||
        { tail -n 20 "$data_root/link.log" >&2; die "khop link failed ($format)"; }
      stage=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['timings']['standardise population'])" \
        "$out/summary.json")
      echo "$format $threads $(cat "$data_root/time") $stage" >>"$results"
      echo "csv: run $i, $format, threads ${threads/#0/all}: $(cat "$data_root/time") $stage" >&2
    done
  done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{'format':8} {'threads':>7} {'wall_s':>7} {'user_s':>7} {'sys_s':>6} {'peak_MiB':>8} {'std_pop_s':>9}")
for threads in ("0", "1"):
    for fmt in ("csv", "parquet"):
        runs = [r for r in rows if r[0] == fmt and r[1] == threads]
        med = lambda i: statistics.median(float(r[i]) for r in runs)
        print(f"{fmt:8} {('all' if threads == '0' else threads):>7} {med(2):7.2f} {med(3):7.2f} "
              f"{med(4):6.2f} {med(5) / 1024:8.0f} {med(6):9.2f}")
EOF
for threads in 0 1; do
  a=$(cat "$data_root"/out-csv-$threads/pairs/* | md5sum | cut -d' ' -f1)
  b=$(cat "$data_root"/out-parquet-$threads/pairs/* | md5sum | cut -d' ' -f1)
  [ "$a" = "$b" ] && same=yes || same=no
  echo "pairs the same in both formats (threads ${threads/#0/all}): $same ($a)"
done
