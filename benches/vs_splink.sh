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
# XDG_CACHE_HOME (the Splink venv lives in $XDG_CACHE_HOME/khop/splink-venv), PYTHON (python3),
# KHOP (a khop binary to use instead of building the release one).
# Details and caveats: benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

die() { echo "vs_splink: $*" >&2; exit 1; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
is_count() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }

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
source benches/lib.sh
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

# run_scenario NAME MODE DATA JOB SIZES_JSON
run_scenario() {
  local name="$1" mode="$2" data="$3" job="$4" sizes="$5"
  local work="$out/work-$name" i
  rm -rf "$work"; mkdir -p "$work"
  local khop_walls=() khop_kibs=() splink_walls=() splink_kibs=()
  local load_start; load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
  for ((i = 1; i <= repeats; i++)); do
    local order=(khop splink)
    (( i % 2 == 0 )) && order=(splink khop)   # alternate who goes first, so drift hits both alike
    for sys in "${order[@]}"; do
      local r
      if [ "$sys" = khop ]; then
        rm -rf "$work/khop"
        echo "vs_splink: [$name $i/$repeats] khop link" >&2
        r=$(measure "$work/khop.$i.log" "$work/khop.$i.time" "$khop" link "$job" --output "$work/khop" --json)
        khop_walls+=("${r% *}"); khop_kibs+=("${r#* }")
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
  "$vpy" "$root/benches/splink_peer.py" eval --mode "$mode" --data "$data" --job "$job" --out "$work/splink" \
    >"$work/splink_eval.log" 2>&1 || { tail -n 30 "$work/splink_eval.log" >&2; die "Splink scoring failed"; }

  "$vpy" - "$name" "$sizes" "$repeats" "$work" "$out/vs_splink-$name.json" "$load_start" \
    "${khop_walls[*]}" "${khop_kibs[*]}" "${splink_walls[*]}" "${splink_kibs[*]}" <<'EOF'
import json, os, platform, statistics, sys
name, sizes, repeats, work, target, load_start = sys.argv[1:7]
kw, kk, sw, sk = ([float(x) for x in a.split()] for a in sys.argv[7:11])
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
report = {"scenario": name, "sizes": json.loads(sizes), "repeats": int(repeats),
          "machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                      "platform": platform.platform(),
                      "loadavg_at_start": load_start, "loadavg_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg())},
          "khop": khop, "splink": splink, "ratios": ratios}
json.dump(report, open(target, "w"), indent=2)
print(f"{'scenario':<8} {'system':<7} {'wall_s':>9} {'peak_MiB':>9} {'candidate_pairs':>16} {'precision':>9} {'recall':>9} {'f1':>9}")
for sysname, s in (("khop", khop), ("splink", splink)):
    print(f"{name:<8} {sysname:<7} {s['wall_s']:>9.2f} {s['peak_mib']:>9.0f} {s['candidate_pairs']:>16,} "
          f"{s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f}")
print(f"{name:<8} ratios: time khop/Splink {ratios['wall_khop_over_splink']:.3f}, "
      f"memory khop/Splink {ratios['peak_khop_over_splink']:.3f}, F1 khop-Splink {ratios['f1_khop_minus_splink']:+.4f}"
      f"  (medians of {repeats}; {target})")
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
  run_scenario link link "$data" "$data/job.toml" "{\"population\": $link_pop, \"civil_servants\": $link_cs}"
  cleanup+=("$data" "$data.datagen.log" "$out/work-link")
fi
if [ "${KEEP:-0}" != 1 ] && [ "${REUSE_DATA:-0}" != 1 ]; then
  rm -rf "${cleanup[@]}"
fi
