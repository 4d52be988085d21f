#!/usr/bin/env bash
# khop against its peer, Splink 5 on DuckDB 2, side by side in one run: the same generated data, the same
# blocking rules and comparisons, the same match threshold. Prints wall time, peak memory, candidate pairs,
# precision, recall and F1 for both, and the ratios; writes them as JSON to $OUT/vs_splink-<scenario>.json.
#
#   benches/vs_splink.sh                        both scenarios at full size
#   benches/vs_splink.sh dedupe [N]             population dedupe (default N = 1,000,000)
#   benches/vs_splink.sh link [POP] [CS]        civil servants against the population (default 10 M, 250 k)
#
# Environment: REPEATS (default 1; medians are reported), OUT (default /tmp/khop-bench), SEED (7),
# REUSE_DATA=1 (keep generated data from an earlier run of the same sizes), KEEP=1 (keep data and outputs),
# CACHED=0 (link: skip the runs of khop with the population from its cache; see docs/job-spec.md),
# XDG_CACHE_HOME (the Splink venv lives in $XDG_CACHE_HOME/khop/splink-venv), PYTHON (python3),
# KHOP (a khop binary to use instead of building the release one).
# Details and caveats: benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
root=$(pwd)

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

scenario="${1:-all}"
case "$scenario" in
  dedupe)
    [ $# -le 2 ] || usage
    dedupe_n="${2:-1000000}"; is_count "$dedupe_n" || die "dedupe: N must be a positive integer, got '$dedupe_n'" ;;
  link)
    [ $# -le 3 ] || usage
    link_pop="${2:-10000000}"; link_cs="${3:-250000}"
    is_count "$link_pop" || die "link: POP must be a positive integer, got '$link_pop'"
    is_count "$link_cs" || die "link: CS must be a positive integer, got '$link_cs'" ;;
  all)
    [ $# -eq 0 ] || usage
    dedupe_n=1000000; link_pop=10000000; link_cs=250000 ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac

out="${OUT:-/tmp/khop-bench}"
repeats="${REPEATS:-1}"
is_count "$repeats" || die "REPEATS must be a positive integer, got '$repeats'"
seed="${SEED:-7}"
python="${PYTHON:-python3}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/khop/splink-venv"
pins=(splink==5.0.0 duckdb==2.0.0 pyarrow==26.0.1 sqlglot==30.30.0)

[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak memory: apt-get install time"
command -v "$python" >/dev/null || die "$python not found (Python 3.11 or newer is needed)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "$python is $("$python" -V 2>&1); Python 3.11 or newer is needed (tomllib)"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- khop --------------------------------------------------------------------------------------------
khop=$(khop_binary vs_splink) || exit 1

# --- the Splink venv, with the exact pins --------------------------------------------------------------
venv_ok() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "${pins[@]}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
EOF
}
if ! venv_ok; then
  echo "vs_splink: creating $venv with ${pins[*]}" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv --clear "$venv" || die "cannot create the venv $venv"
  "$venv/bin/python" -m pip install --quiet "${pins[@]}" || die "pip install ${pins[*]} failed"
  venv_ok || die "the venv $venv does not have ${pins[*]} after installing"
fi
vpy="$venv/bin/python"

# --- helpers ---------------------------------------------------------------------------------------------
# measure LOG TIMEFILE CMD...: runs CMD under /usr/bin/time -v; prints "wall_s peak_kib". Fails loudly.
measure() {
  local log="$1" tfile="$2"; shift 2
  local start end rc=0
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$tfile" "$@" >"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    echo "vs_splink: command failed (exit $rc): $*" >&2
    echo "--- last lines of $log ---" >&2
    tail -n 30 "$log" >&2
    [ -s "$tfile" ] && grep -E 'Exit status|Maximum resident' "$tfile" >&2
    exit 1
  fi
  local kib
  kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tfile")
  [ -n "$kib" ] || die "no peak memory in $tfile"
  awk -v s="$start" -v e="$end" -v k="$kib" 'BEGIN { printf "%.3f %d\n", e - s, k }'
}

generate() { # generate DIR POP CS
  local dir="$1" pop="$2" cs="$3"
  if [ "${REUSE_DATA:-0}" = 1 ] && [ -f "$dir/manifest.json" ]; then
    echo "vs_splink: reusing the data in $dir" >&2
    return
  fi
  rm -rf "$dir"
  echo "vs_splink: generating $pop population and $cs civil-servant records (seed $seed) in $dir" >&2
  "$khop" datagen --population "$pop" --civil-servants "$cs" --seed "$seed" --out "$dir" >"$dir.datagen.log" 2>&1 ||
    { tail -n 20 "$dir.datagen.log" >&2; die "khop datagen failed"; }
}

# run_scenario NAME MODE DATA JOB SIZES_JSON [CACHED_JOB]
# With CACHED_JOB (the job with its reference input cached), khop also runs from a filled cache: one
# run fills it (timed and reported apart), then each repeat runs khop, khop from the cache and Splink.
run_scenario() {
  local name="$1" mode="$2" data="$3" job="$4" sizes="$5" cached_job="${6:-}"
  local work="$out/work-$name" i
  rm -rf "$work"; mkdir -p "$work"
  local khop_walls=() khop_kibs=() splink_walls=() splink_kibs=() cached_walls=() cached_kibs=()
  local fill="0 0"
  local load_start; load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
  local systems=(khop splink)
  if [ -n "$cached_job" ]; then
    systems=(khop cached splink)
    echo "vs_splink: [$name] khop link, filling the population's cache" >&2
    fill=$(measure "$work/khop-fill.log" "$work/khop-fill.time" "$khop" link "$cached_job" --output "$work/khop-cached" --json)
    echo "vs_splink: [$name] khop, filling the cache: ${fill% *} s, $(( ${fill#* } / 1024 )) MiB" >&2
  fi
  for ((i = 1; i <= repeats; i++)); do
    local order=("${systems[@]}") j
    if (( i % 2 == 0 )); then   # alternate who goes first, so drift hits all alike
      order=(); for ((j = ${#systems[@]} - 1; j >= 0; j--)); do order+=("${systems[j]}"); done
    fi
    for sys in "${order[@]}"; do
      local r
      if [ "$sys" = khop ]; then
        rm -rf "$work/khop"
        echo "vs_splink: [$name $i/$repeats] khop link" >&2
        r=$(measure "$work/khop.$i.log" "$work/khop.$i.time" "$khop" link "$job" --output "$work/khop" --json)
        khop_walls+=("${r% *}"); khop_kibs+=("${r#* }")
      elif [ "$sys" = cached ]; then
        rm -rf "$work/khop-cached"
        echo "vs_splink: [$name $i/$repeats] khop link, population from its cache" >&2
        r=$(measure "$work/khop-cached.$i.log" "$work/khop-cached.$i.time" \
          "$khop" link "$cached_job" --output "$work/khop-cached" --json)
        cached_walls+=("${r% *}"); cached_kibs+=("${r#* }")
      else
        rm -rf "$work/splink"
        echo "vs_splink: [$name $i/$repeats] Splink (train + predict)" >&2
        r=$(measure "$work/splink.$i.log" "$work/splink.$i.time" \
          "$vpy" "$root/benches/splink_peer.py" run --mode "$mode" --data "$data" --job "$job" --out "$work/splink")
        splink_walls+=("${r% *}"); splink_kibs+=("${r#* }")
      fi
      echo "vs_splink: [$name $i/$repeats] $sys: ${r% *} s, $(( ${r#* } / 1024 )) MiB" >&2
    done
  done

  echo "vs_splink: [$name] scoring both against the truth (not timed)" >&2
  "$khop" eval --truth "$data/truth" --output "$work/khop" --json >"$work/khop_eval.json" 2>"$work/khop_eval.log" ||
    { cat "$work/khop_eval.log" >&2; die "khop eval failed"; }
  if [ -n "$cached_job" ]; then
    "$khop" eval --truth "$data/truth" --output "$work/khop-cached" --json >"$work/khop-cached_eval.json" \
      2>"$work/khop-cached_eval.log" || { cat "$work/khop-cached_eval.log" >&2; die "khop eval failed"; }
  fi
  "$vpy" "$root/benches/splink_peer.py" eval --mode "$mode" --data "$data" --job "$job" --out "$work/splink" \
    >"$work/splink_eval.log" 2>&1 || { tail -n 30 "$work/splink_eval.log" >&2; die "Splink scoring failed"; }

  "$vpy" - "$name" "$sizes" "$repeats" "$work" "$out/vs_splink-$name.json" "$load_start" \
    "${khop_walls[*]}" "${khop_kibs[*]}" "${splink_walls[*]}" "${splink_kibs[*]}" \
    "${cached_walls[*]}" "${cached_kibs[*]}" "$fill" <<'EOF'
import json, os, platform, statistics, sys
name, sizes, repeats, work, target, load_start = sys.argv[1:7]
kw, kk, sw, sk, cw, ck, fill = ([float(x) for x in a.split()] for a in sys.argv[7:14])
load = lambda p: json.load(open(os.path.join(work, p)))
ksum, keval = load("khop/summary.json"), load("khop_eval.json")
srun, seval = load("splink/splink_run.json"), load("splink/splink_eval.json")
def system(walls, kibs, candidates, pairs, extra):
    return {
        "wall_s": round(statistics.median(walls), 3), "wall_s_all": walls,
        "peak_mib": round(statistics.median(kibs) / 1024, 1), "peak_mib_all": [round(k / 1024, 1) for k in kibs],
        "candidate_pairs": candidates, **{k: pairs[k] for k in
            ("true_pairs", "predicted_pairs", "true_positives", "precision", "recall", "f1")}, **extra}
khop = system(kw, kk, ksum["candidate_pairs"], keval["pairs"],
              {"match_threshold": ksum["thresholds"]["match"], "seconds": ksum.get("timings", {})})
splink = system(sw, sk, seval["candidate_pairs"], seval["pairs"],
                {"match_threshold": srun["threshold"], "seconds": srun["seconds"],
                 "versions": {"splink": srun["splink"], "duckdb": srun["duckdb"]},
                 "duckdb_threads": srun["threads"], "em_zero_clamped": srun.get("em_zero_clamped", 0), "duckdb_memory_limit": srun["memory_limit"],
                 "rules": seval["rules"]})
ratios = {"wall_khop_over_splink": round(khop["wall_s"] / splink["wall_s"], 3),
          "peak_khop_over_splink": round(khop["peak_mib"] / splink["peak_mib"], 3),
          "f1_khop_minus_splink": round(khop["f1"] - splink["f1"], 5)}
systems = [("khop", khop), ("splink", splink)]
cached = None
if cw:
    csum = load("khop-cached/summary.json")
    cached = system(cw, ck, csum["candidate_pairs"], load("khop-cached_eval.json")["pairs"],
                    {"match_threshold": csum["thresholds"]["match"], "seconds": csum.get("timings", {}),
                     "from_cache": {s["name"]: s.get("from_cache", 0) for s in csum["sources"]},
                     "filling_the_cache": {"wall_s": fill[0], "peak_mib": round(fill[1] / 1024, 1)}})
    ratios.update({"wall_khop_cached_over_splink": round(cached["wall_s"] / splink["wall_s"], 3),
                   "peak_khop_cached_over_splink": round(cached["peak_mib"] / splink["peak_mib"], 3),
                   "f1_khop_cached_minus_splink": round(cached["f1"] - splink["f1"], 5)})
    systems.insert(1, ("cached", cached))
report = {"scenario": name, "sizes": json.loads(sizes), "repeats": int(repeats),
          "machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                      "platform": platform.platform(),
                      "loadavg_at_start": load_start, "loadavg_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg())},
          "khop": khop, **({"khop_cached": cached} if cached else {}), "splink": splink, "ratios": ratios}
json.dump(report, open(target, "w"), indent=2)
print(f"{'scenario':<8} {'system':<7} {'wall_s':>9} {'peak_MiB':>9} {'candidate_pairs':>16} {'precision':>9} {'recall':>9} {'f1':>9}")
for sysname, s in systems:
    print(f"{name:<8} {sysname:<7} {s['wall_s']:>9.2f} {s['peak_mib']:>9.0f} {s['candidate_pairs']:>16,} "
          f"{s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f}")
print(f"{name:<8} ratios: time khop/Splink {ratios['wall_khop_over_splink']:.3f}, "
      f"memory khop/Splink {ratios['peak_khop_over_splink']:.3f}, F1 khop-Splink {ratios['f1_khop_minus_splink']:+.4f}"
      f"  (medians of {repeats}; {target})")
if cached:
    print(f"{name:<8} ratios, khop with the population from its cache (filled once before, in {fill[0]:.2f} s): "
          f"time {ratios['wall_khop_cached_over_splink']:.3f}, memory {ratios['peak_khop_cached_over_splink']:.3f}, "
          f"F1 {ratios['f1_khop_cached_minus_splink']:+.4f}")
EOF
}

# --- the scenarios -------------------------------------------------------------------------------------
cleanup=()
if [ "$scenario" = dedupe ] || [ "$scenario" = all ]; then
  data="$out/data-dedupe-$dedupe_n"
  generate "$data" "$dedupe_n" 0
  cp "$root/benches/jobs/dedupe.toml" "$data/dedupe.toml"
  run_scenario dedupe dedupe "$data" "$data/dedupe.toml" "{\"population\": $dedupe_n}"
  cleanup+=("$data" "$data.datagen.log" "$out/work-dedupe")
fi
if [ "$scenario" = link ] || [ "$scenario" = all ]; then
  data="$out/data-link-$link_pop-$link_cs"
  generate "$data" "$link_pop" "$link_cs"
  cached_job=""
  if [ "${CACHED:-1}" = 1 ]; then
    # The same job with the population (the reference side) cached under the scenario's work directory.
    cached_job="$data/job-cached.toml"
    "$python" - "$data/job.toml" "$cached_job" "$out/work-link/cache" <<'EOF'
import sys
text = open(sys.argv[1]).read()
marker = 'name = "population"\n'
if text.count(marker) != 1:
    sys.exit("job.toml: no single population input to cache")
open(sys.argv[2], "w").write(text.replace(marker, f'{marker}cache = "{sys.argv[3]}"\n'))
EOF
  fi
  run_scenario link link "$data" "$data/job.toml" "{\"population\": $link_pop, \"civil_servants\": $link_cs}" "$cached_job"
  cleanup+=("$data" "$data.datagen.log" "$out/work-link")
fi
if [ "${KEEP:-0}" != 1 ] && [ "${REUSE_DATA:-0}" != 1 ]; then
  rm -rf "${cleanup[@]}"
fi
