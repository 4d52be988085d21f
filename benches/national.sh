#!/usr/bin/env bash
# khop link at national scale (issue 3): civil servants against the population database, end to end on
# this machine, with the time and memory of every stage.
#
#   benches/national.sh                   100,000,000 population records, 2,500,000 civil servants
#   benches/national.sh POP [CS]          CS defaults to 2.5% of POP
#   benches/national.sh 10000000 250000   a quicker run
#
# Environment: DATA (default ${TMPDIR:-/tmp}/khop-national; data goes to $DATA/pop<POP>-cs<CS>-seed<SEED>
# and is reused when its manifest.json is there), SEED (7), THREADS (khop link --threads; default every
# core), KHOP (a khop binary to use instead of building one), EVAL=0 (skip khop eval: it holds the truth
# of both sources in memory), KEEP=1 (keep the link outputs; by default only the report stays).
# Prints, per stage, its seconds (summary.json) and the peak resident memory sampled while it ran; then
# the wall time and peak memory of the whole process (/usr/bin/time -v), the pairs, and precision,
# recall and F1 of the pairs (khop eval). Writes the same as JSON to $DATA/national-<POP>-<CS>.json.
# Details: benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

dataset_sizes 100000000 "$@"
seed="${SEED:-7}"
data_root="${DATA:-${TMPDIR:-/tmp}/khop-national}"
needs_time_and_python

khop=$(khop_binary national) || exit 1

mkdir -p "$data_root"
data_root=$(cd "$data_root" && pwd)
data="$data_root/pop$pop-cs$cs-seed$seed"
if [ -f "$data/manifest.json" ]; then
  echo "national: reusing the data in $data" >&2
else
  rm -rf "$data"
  echo "national: generating $pop population and $cs civil-servant records (seed $seed) in $data" >&2
  /usr/bin/time -v -o "$data.datagen.time" "$khop" datagen --population "$pop" --civil-servants "$cs" \
    --seed "$seed" --out "$data" >"$data.datagen.log" 2>&1 ||
    { tail -n 20 "$data.datagen.log" >&2; die "khop datagen failed"; }
fi

out="$data/national-run"
work="$data_root/national-$pop-$cs"
rm -rf "$out"; mkdir -p "$work"
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "national: khop link (load average $load_start)" >&2
start=$(date +%s.%N)
/usr/bin/time -v -o "$work/link.time" "$khop" link "$data/job.toml" --output "$out" "${threads[@]}" \
  >"$work/link.log" 2>&1 &
timer=$!
# Sample the resident memory of khop (the child of time) twice a second, with seconds since the start.
: >"$work/rss.tsv"
(
  pid=""
  while kill -0 "$timer" 2>/dev/null; do
    [ -n "$pid" ] || pid=$(pgrep -P "$timer" | head -n 1 || true)
    if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
      kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$kib" ] && echo "$(date +%s.%N) $kib" >>"$work/rss.tsv"
    fi
    sleep 0.5
  done
) &
sampler=$!
rc=0
wait "$timer" || rc=$?
end=$(date +%s.%N)
wait "$sampler" || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$rc" -ne 0 ]; then
  tail -n 30 "$work/link.log" >&2
  grep -E 'Exit status|Maximum resident' "$work/link.time" >&2 || true
  die "khop link failed (exit $rc)"
fi

eval_json=""
if [ "${EVAL:-1}" != 0 ]; then
  echo "national: khop eval" >&2
  /usr/bin/time -v -o "$work/eval.time" "$khop" eval --truth "$data/truth" --output "$out" --json \
    >"$work/eval.json" 2>"$work/eval.log" || { tail -n 20 "$work/eval.log" >&2; die "khop eval failed"; }
  eval_json="$work/eval.json"
fi

python3 - "$out/summary.json" "$work/link.time" "$work/rss.tsv" "$start" "$end" "$pop" "$cs" \
  "$load_start" "$load_end" "$eval_json" "$data_root/national-$pop-$cs.json" "$data" <<'EOF'
import json, sys
(summary_path, time_path, rss_path, start, end, pop, cs, load_start, load_end, eval_path, report_path,
 data) = sys.argv[1:]
start, end = float(start), float(end)
summary = json.load(open(summary_path))
peak_kib = 0
for line in open(time_path):
    if "Maximum resident set size" in line:
        peak_kib = int(line.split(":")[1])
samples = [tuple(map(float, l.split())) for l in open(rss_path) if l.strip()]
timings = summary["timings"]
names = [s["name"] for s in summary["sources"]]
order = []
for n in names:
    order += [f"standardise {n}", f"ids {n}"]
    if f"partition {n}" in timings:  # a dedupe's third stage of its side
        order.append(f"partition {n}")
order += ["compare", "train", "score", "write"]
# Stages ran one after another from (about) the process start: sampled memory is attributed by time.
stages, t = [], start
for name in order:
    secs = timings.get(name, 0.0)
    rss = [kib for (at, kib) in samples if t <= at <= t + secs]
    stages.append({"stage": name, "seconds": secs, "peak_rss_mib": max(rss) / 1024 if rss else None})
    t += secs
quality = json.load(open(eval_path))["pairs"] if eval_path else None
report = {
    "population": int(pop), "civil_servants": int(cs), "data": data,
    "wall_s": end - start, "peak_rss_mib": peak_kib / 1024,
    "stages": stages, "engine_total_s": timings.get("total"),
    "candidate_pairs": summary["candidate_pairs"], "pairs_written": summary["pairs_written"],
    "rules": {r["name"]: r["candidate_pairs"] for r in summary["rules"]},
    "sources": summary["sources"], "statuses": summary["statuses"],
    "quality": quality, "load_average": {"start": load_start, "end": load_end},
}
json.dump(report, open(report_path, "w"), indent=2)
print(f"national: {int(pop):,} population x {int(cs):,} civil servants (load average {load_start} -> {load_end})")
print(f"{'stage':<28} {'seconds':>9} {'peak_MiB':>9}")
for s in stages:
    mib = "-" if s["peak_rss_mib"] is None else f"{s['peak_rss_mib']:.0f}"
    print(f"{s['stage']:<28} {s['seconds']:>9.1f} {mib:>9}")
print(f"{'khop link (wall, peak)':<28} {end - start:>9.1f} {peak_kib / 1024:>9.0f}")
for s in summary["sources"]:
    print(f"  {s['name']}: {s['input']:,} records, {s['accepted']:,} accepted, {s['pruned']:,} pruned")
print(f"  candidate pairs {summary['candidate_pairs']:,} ("
      + ", ".join(f"{r['name']} {r['candidate_pairs']:,}" for r in summary["rules"])
      + f"), written {summary['pairs_written']:,}")
if quality:
    print(f"  pairs: precision {quality['precision']:.5f}  recall {quality['recall']:.5f}  F1 {quality['f1']:.5f}")
print(f"  report: {report_path}")
EOF
[ "${KEEP:-0}" = 1 ] || rm -rf "$out"
