#!/usr/bin/env bash
# Scale-out: the same link job run by the engine alone (`khop link --direct`: no Raft, no gRPC; the row
# labelled `embedded`) and on a local cluster of 3 coordinators and W workers, for each W. Prints, per
# run: wall seconds, input records per second, speed-up and efficiency per worker against the 1-worker
# cluster, peak memory of the busiest process, the scheduling overhead, and whether the outputs equal
# the embedded run's byte for byte.
#
#   benches/scale_out.sh [POP] [CS]        default 1,000,000 population and 25,000 civil servants
#
# Environment: WORKERS (default "1 2 4"), THREADS (CPU threads per worker and for the embedded run,
# default 1: W workers then use W cores), OUT (default /tmp/khop-scale), SEED (7), REUSE_DATA=1 (reuse the
# data of an earlier run of the same sizes), PORT (first TCP port, default 17400), KEEP=1 (keep outputs),
# KHOP (a khop binary to use instead of building the release one).
#
# Scheduling overhead (1 worker, 1 slot, so tasks run one after another): 1 − Σ task seconds / job wall,
# where task seconds are the workers' own measure of each committed attempt (`khop status --json`,
# stages[].task_seconds) and job wall runs from submission to the job's end as the leader stamps them.
# Everything between tasks (polls, Raft commits, planning, the CLI) counts as overhead.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

pop="${1:-1000000}"; cs="${2:-25000}"
is_count "$pop" || die "POP must be a positive integer, got '$pop'"
is_count "$cs" || die "CS must be a positive integer, got '$cs'"
workers_list="${WORKERS:-1 2 4}"
threads="${THREADS:-1}"
is_count "$threads" || die "THREADS must be a positive integer, got '$threads'"
out="${OUT:-/tmp/khop-scale}"
seed="${SEED:-7}"
port="${PORT:-17400}"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak memory: apt-get install time"
mkdir -p "$out"
out=$(cd "$out" && pwd)

khop=$(khop_binary scale_out) || exit 1

data="$out/data-$pop-$cs-$seed"
if [ "${REUSE_DATA:-0}" != 1 ] || [ ! -f "$data/job.toml" ]; then
  rm -rf "$data"
  echo "scale_out: datagen $pop population, $cs civil servants" >&2
  "$khop" datagen --population "$pop" --civil-servants "$cs" --seed "$seed" --out "$data" >&2
fi
job="$data/job.toml"

# Each background pid is a /usr/bin/time whose child is khop: stop the khop processes with SIGTERM (so
# time writes its report), then SIGKILL whatever is left after 10 s.
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do pkill -KILL -P "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap cleanup EXIT

# peak_mib FILE: the maximum resident set /usr/bin/time -v wrote to FILE, in MiB.
peak_mib() { awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); printf "%.0f", $2 / 1024}' "$1"; }

# --- embedded -----------------------------------------------------------------------------------------
rm -rf "$out/embedded"
start=$(date +%s.%N)
/usr/bin/time -v "$khop" link --direct "$job" --output "$out/embedded" --threads "$threads" \
  >"$out/embedded.log" 2>"$out/embedded.time" || die "embedded link failed: $out/embedded.time"
end=$(date +%s.%N)
embedded_wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')
embedded_peak=$(peak_mib "$out/embedded.time")
records=$(python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
print(sum(v["input"] for v in s["sources"]))' "$out/embedded/summary.json")

printf '\n%-10s %8s %8s %10s %12s %9s %11s %10s %9s %s\n' run workers threads wall_s records/s speedup efficiency peak_MiB overhead same_outputs
printf '%-10s %8s %8d %10.2f %12.0f %9s %11s %10s %9s %s\n' embedded - "$threads" "$embedded_wall" \
  "$(awk -v r="$records" -v w="$embedded_wall" 'BEGIN { print r / w }')" - - "$embedded_peak" - -

# same_as_embedded DIR: "yes" when every output Parquet file equals the embedded run's byte for byte.
same_as_embedded() {
  local d
  for d in pairs clusters reconciliation rejects; do
    [ -d "$out/embedded/$d" ] || continue
    diff -rq "$out/embedded/$d" "$1/$d" >/dev/null 2>&1 || { echo "no ($d differs)"; return; }
  done
  echo yes
}

results="$out/scale_out.json"
echo "[" >"$results"
first_result=1
base_wall=""
export KHOP_TOKEN="scale-out-benchmark-token-0123456789"
export KHOP_LOG="warn"
for w in $workers_list; do
  is_count "$w" || die "WORKERS holds '$w', not a positive integer"
  run="$out/cluster-$w"
  rm -rf "$run"; mkdir -p "$run"
  peers="1=http://127.0.0.1:$port,2=http://127.0.0.1:$((port + 1)),3=http://127.0.0.1:$((port + 2))"
  export KHOP_COORDINATORS="http://127.0.0.1:$port,http://127.0.0.1:$((port + 1)),http://127.0.0.1:$((port + 2))"
  for id in 1 2 3; do
    (: </dev/tcp/127.0.0.1/$((port + id - 1))) 2>/dev/null &&
      die "port $((port + id - 1)) is in use (an earlier run's coordinator?): set PORT"
  done
  for id in 1 2 3; do
    bootstrap=(); [ "$id" = 1 ] && bootstrap=(--bootstrap)
    /usr/bin/time -v -o "$run/coordinator-$id.time" "$khop" coordinator --id "$id" \
      --listen "127.0.0.1:$((port + id - 1))" --data-dir "$run/coordinator-$id" --peers "$peers" \
      "${bootstrap[@]}" 2>"$run/coordinator-$id.log" &
    pids+=($!)
  done
  for _ in $(seq 100); do
    voters=$("$khop" cluster --json 2>/dev/null | python3 -c 'import json,sys
s = json.load(sys.stdin)
print(sum(c["role"] in ("leader", "follower") for c in s["coordinators"]) if s.get("leader_id") else 0)' 2>/dev/null || echo 0)
    [ "$voters" = 3 ] && break
    sleep 0.3
  done
  [ "$voters" = 3 ] || die "the 3 coordinators did not form a cluster: $run/coordinator-*.log"
  for i in $(seq "$w"); do
    /usr/bin/time -v -o "$run/worker-$i.time" "$khop" worker --slots "$threads" --threads "$threads" \
      --name "w$i" 2>"$run/worker-$i.log" &
    pids+=($!)
  done
  for _ in $(seq 100); do
    n=$("$khop" workers --json 2>/dev/null | python3 -c 'import json,sys
print(sum(x["state"] == "active" for x in json.load(sys.stdin)))' 2>/dev/null || echo 0)
    [ "$n" = "$w" ] && break
    sleep 0.3
  done
  [ "$n" = "$w" ] || die "$w workers did not register: $run/worker-*.log"

  start=$(date +%s.%N)
  id=$("$khop" submit "$job" --output "$run/out")
  "$khop" watch "$id" >/dev/null 2>"$run/watch.log" || die "job $id did not succeed: $run/watch.log"
  end=$(date +%s.%N)
  "$khop" status "$id" --json >"$run/status.json"
  cleanup

  wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')
  [ -n "$base_wall" ] || base_wall=$wall
  peak=$(for f in "$run"/*.time; do peak_mib "$f"; echo; done | sort -n | tail -1)
  overhead=$(python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
wall = (s["finished_unix_ms"] - s["submitted_unix_ms"]) / 1000
busy = sum(st.get("task_seconds") or 0 for st in s["stages"])
print(f"{1 - busy / wall:.3f}" if busy > 0 and int(sys.argv[2]) == 1 else "-")' "$run/status.json" "$w")
  same=$(same_as_embedded "$run/out")
  speedup=$(awk -v b="$base_wall" -v t="$wall" 'BEGIN { printf "%.2f", b / t }')
  efficiency=$(awk -v b="$base_wall" -v t="$wall" -v w="$w" 'BEGIN { printf "%.2f", b / t / w }')
  rps=$(awk -v r="$records" -v t="$wall" 'BEGIN { printf "%.0f", r / t }')
  printf '%-10s %8d %8d %10.2f %12.0f %9s %11s %10s %9s %s\n' cluster "$w" "$threads" "$wall" "$rps" \
    "$speedup" "$efficiency" "$peak" "$overhead" "$same"
  [ "$first_result" = 1 ] || echo "," >>"$results"
  first_result=0
  printf '{"workers": %d, "threads": %d, "wall_s": %s, "records": %d, "records_per_s": %s, "speedup": %s, "efficiency": %s, "peak_mib": %s, "overhead": "%s", "same_outputs": "%s"}\n' \
    "$w" "$threads" "$wall" "$records" "$rps" "$speedup" "$efficiency" "$peak" "$overhead" "$same" >>"$results"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$run/out"
done
echo "]" >>"$results"
printf '\nembedded: %s s, %s MiB; records: %s; cores: %s; load average: %s\n' "$embedded_wall" \
  "$embedded_peak" "$records" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $results"
[ "${KEEP:-0}" = 1 ] || rm -rf "$out/embedded"
