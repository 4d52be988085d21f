#!/usr/bin/env bash
# The cluster in containers, end to end: builds the image, generates a small dataset into a shared
# directory, starts 3 coordinators and 2 workers with deploy/docker-compose.yml, submits the job datagen
# writes, waits for Docker to see the coordinators healthy, SIGKILLs a worker holding a task and then
# the Raft leader while the job runs, waits for the job, checks its outputs and that every input record
# is accounted for, asks for the job from this host through the coordinators' published ports (the
# followers name the leader by a name only the network resolves), and stops a worker with `docker
# stop` (it drains and exits 0). Prints PASS, or FAIL with
# the containers' last log lines and exit status 1; removes its containers, network, volumes and
# directory either way.
#
#   deploy/smoke.sh
#
# Environment: KHOP (a khop binary for the image instead of building one), SKIP_BUILD=1 (use the image
# khop:latest as it is), POP and CS (dataset sizes, default 20000 and 1000), WORKERS (default 2),
# TASK_DELAY_MS (each task held this long on the workers, default 300, so that the job lasts long
# enough to be killed in), TIMEOUT (seconds the job may take, default 600), COMPOSE (default
# docker-compose, else `docker compose`).
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "smoke: $*" >&2; }
die() { say "$*"; exit 1; }

pop="${POP:-20000}"
cs="${CS:-1000}"
workers="${WORKERS:-2}"
timeout_s="${TIMEOUT:-600}"
[[ "$pop" =~ ^[1-9][0-9]*$ && "$cs" =~ ^[1-9][0-9]*$ ]] || die "POP and CS must be positive integers"
[[ "$workers" =~ ^[1-9][0-9]*$ && "$workers" -ge 2 ]] || die "WORKERS must be 2 or more (one is killed)"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive number of seconds"
command -v python3 >/dev/null || die "python3 is needed to read JSON"

if [ -n "${COMPOSE:-}" ]; then
  read -r -a compose <<<"$COMPOSE"
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  compose=(docker compose)
fi

# A project name of its own, so that the smoke test never touches a cluster started by hand.
project="khop-smoke-$$"
shared=$(mktemp -d "${TMPDIR:-/tmp}/khop-smoke.XXXXXX")
log="$shared/smoke.log"
# The containers run as this user, so that everything they write under $shared can be removed here.
KHOP_UID=$(id -u)
KHOP_GID=$(id -g)
export KHOP_SHARED="$shared" KHOP_UID KHOP_GID
export KHOP_TOKEN="khop-smoke-token-$RANDOM$RANDOM$RANDOM"
export KHOP_WORKER_TASK_DELAY_MS="${TASK_DELAY_MS:-300}"
export KHOP_LOG=info
export KHOP_IMAGE=khop:latest

dc() { "${compose[@]}" -p "$project" -f docker-compose.yml "$@"; }

# Client commands run on the cluster's network, where the coordinators' names resolve (they name
# each other, and the leader, by service name). `run_client` is the way deploy/README.md gives (a
# container of its own, about a second each); `client` runs the same binary in a live coordinator's
# container (a tenth of a second), for the polls that have to keep up with the job.
run_client() { dc run --rm -T khop "$@" 2>>"$log"; }
via=""
client() { docker exec -e KHOP_LOG=warn "$via" khop "$@" 2>>"$log"; }

result=FAIL
finish() {
  if [ "$result" != PASS ]; then
    say "the containers' last log lines:"
    dc logs --no-color --tail 15 >&2 2>/dev/null || true
    # docker-compose's own progress lines ("Creating ... done") say nothing here.
    if grep -qv '^\(Creating\|Starting\|Stopping\|Removing\) ' "$log" 2>/dev/null; then
      say "the last messages of the client commands and docker-compose:"
      grep -v '^\(Creating\|Starting\|Stopping\|Removing\) ' "$log" | tail -15 >&2
    fi
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || say "docker-compose down failed: remove project $project by hand"
  rm -rf "$shared"
  echo "$result"
  if [ "$result" = PASS ]; then exit 0; fi
  exit 1
}
trap finish EXIT

# json EXPR: evaluates a Python expression over the JSON document on stdin (`d`), printing the value.
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)" 2>>"$log"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  ./build-image.sh >/dev/null 2>>"$log" || die "building the image failed"
fi
docker image inspect "$KHOP_IMAGE" >/dev/null 2>&1 || die "no image $KHOP_IMAGE: run deploy/build-image.sh"

start=$(date +%s)
say "datagen: $pop population, $cs civil servants into $shared/data"
run_client datagen --population "$pop" --civil-servants "$cs" --seed 7 --out /shared/data >/dev/null ||
  die "datagen failed"

say "starting 3 coordinators and $workers workers (project $project)"
dc up -d --scale worker="$workers" 2>>"$log" || die "docker-compose up failed"
via=$(dc ps -q coordinator-1)
[ -n "$via" ] || die "coordinator-1 did not start"

# Ready: a leader and 3 voters, and every worker active.
voters=0
active=0
for _ in $(seq 120); do
  voters=$(client cluster --json | json 'sum(c["role"] in ("leader", "follower") for c in d["coordinators"]) if d["leader_id"] else 0' || echo 0)
  active=$(client workers --json | json 'sum(w["state"] == "active" for w in d)' || echo 0)
  [ "$voters" = 3 ] && [ "$active" = "$workers" ] && break
  sleep 0.5
done
if [ "$voters" != 3 ] || [ "$active" != "$workers" ]; then
  die "no cluster after 60 s: $voters voters, $active of $workers workers active"
fi
# Docker's health checks (`khop health` in each coordinator's container) agree.
healthy=0
for _ in $(seq 60); do
  healthy=0
  for id in 1 2 3; do
    h=$(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "coordinator-$id")" 2>>"$log" || true)
    [ "$h" = healthy ] && healthy=$((healthy + 1))
  done
  [ "$healthy" = 3 ] && break
  sleep 1
done
[ "$healthy" = 3 ] || die "$healthy of 3 coordinators healthy to Docker after 60 s"

job=$(run_client submit /shared/data/job.toml --output /shared/out) || die "submit failed"
say "submitted $job"

# Mid-job: once some task has committed, pick a worker that holds a task.
worker_name=""
for _ in $(seq 240); do
  status=$(client status "$job" --json) || { sleep 0.5; continue; }
  state=$(json 'd["state"]' <<<"$status")
  case "$state" in
    queued | running) ;;
    succeeded) die "job $job succeeded before anything was killed (a longer job: TASK_DELAY_MS)" ;;
    *) die "job $job $state: $(json 'd["error"]' <<<"$status")" ;;
  esac
  if [ "$(json 'sum(s["tasks_done"] for s in d["stages"])' <<<"$status")" -gt 0 ]; then
    worker_name=$(client workers --json |
      json 'next((w["name"] for w in d if w["state"] == "active" and w["running"]), "")' || true)
    [ -n "$worker_name" ] && break
  fi
  sleep 0.5
done
[ -n "$worker_name" ] || die "no worker held a task within 2 minutes"
# A worker registers under its host name, its container's short id.
worker_container=$(dc ps -q worker | grep "^$worker_name" || true)
[ -n "$worker_container" ] || die "worker $worker_name is no container of this project"
before=$(client cluster --json) || die "khop cluster failed"
leader=$(json 'd["leader_id"]' <<<"$before")
term=$(json 'd["term"]' <<<"$before")
leader_container=$(dc ps -q "coordinator-$leader")
[ -n "$leader_container" ] || die "no container for the leader, coordinator-$leader"
# Ask a survivor from now on.
for id in 1 2 3; do
  [ "$id" = "$leader" ] || { via=$(dc ps -q "coordinator-$id"); break; }
done
kill_ms=$(($(date +%s%N) / 1000000))
progress=$(json '", ".join("%s %d/%d" % (s["name"], s["tasks_done"], s["tasks_total"]) for s in d["stages"] if s["tasks_total"])' <<<"$status")
say "job at: $progress"
say "killing worker $worker_name (holding a task), then the leader, coordinator-$leader (term $term)"
docker kill -s KILL "$worker_container" >/dev/null || die "docker kill of the worker failed"
docker kill -s KILL "$leader_container" >/dev/null || die "docker kill of the leader failed"

# The new leader is elected in a later term. (`docker kill` counts as a manual stop: the restart policy
# leaves both containers down, and the job ends on 2 coordinators and one worker fewer.)
new_leader=0
new_term=0
for _ in $(seq 60); do
  now=$(client cluster --json | json '"%s %s" % (d["leader_id"], d["term"])' || echo "0 0")
  new_leader=${now% *}
  new_term=${now#* }
  [ "$new_leader" != 0 ] && [ "$new_term" -gt "$term" ] && break
  new_leader=0
  sleep 0.5
done
[ "$new_leader" != 0 ] || die "no new leader within 30 s of killing coordinator-$leader"
say "coordinator-$new_leader leads (term $new_term)"

status=""
state=unknown
deadline=$(($(date +%s) + timeout_s))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if status=$(client status "$job" --json); then
    state=$(json 'd["state"]' <<<"$status")
    case "$state" in succeeded | failed | cancelled) break ;; esac
  fi
  sleep 1
done
case "$state" in
  succeeded) ;;
  failed | cancelled) die "job $job $state: $(json 'd["error"]' <<<"$status")" ;;
  *) die "job $job is still $state after $timeout_s s (TIMEOUT)" ;;
esac
finished_ms=$(json 'd["finished_unix_ms"]' <<<"$status")
[ "$finished_ms" -gt "$kill_ms" ] || die "job $job finished before the kills: nothing was tested"
say "job $job succeeded in $(json 'round(d["wall_seconds"], 1)' <<<"$status") s"

out="$shared/out"
for d in pairs clusters reconciliation; do
  compgen -G "$out/$d/*.parquet" >/dev/null || die "no Parquet files in $d/"
done
[ -s "$out/summary.json" ] || die "no summary.json"
[ ! -e "$out/.khop-scratch" ] || [ -z "$(ls -A "$out/.khop-scratch")" ] || die "scratch files left behind"

# Every record accounted for: each source read as many records as datagen wrote, each of them accepted
# or rejected, and every accepted civil servant has a reconciliation status.
python3 - "$shared/data/manifest.json" "$out/summary.json" <<'EOF' || die "records not accounted for"
import json, sys

manifest = json.load(open(sys.argv[1]))
summary = json.load(open(sys.argv[2]))
ok = True
for s in summary["sources"]:
    written = manifest[s["name"]]["records"]
    line = f"{s['name']}: {s['input']} read ({written} written), {s['accepted']} accepted, {s['rejected']} rejected"
    if s["input"] != written or s["accepted"] + s["rejected"] != s["input"]:
        ok = False
        line += "  <- wrong"
    print("smoke: " + line, file=sys.stderr)
left = summary["sources"][0]
statuses = sum(summary["statuses"].values())
line = f"reconciliation: {statuses} statuses for {left['accepted']} accepted {left['name']}"
if statuses != left["accepted"]:
    ok = False
    line += "  <- wrong"
print("smoke: " + line, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF

# A client on this host, outside the network, through the published ports: the followers name the
# leader as http://coordinator-N:7400, which does not resolve here, so the client must find the leader
# among the addresses it was given. Each order of the addresses, so that some start at a follower.
docker cp "$(dc ps -q coordinator-$new_leader):/usr/local/bin/khop" "$shared/khop-host" >/dev/null 2>>"$log" ||
  die "could not copy khop out of the image"
published=()
for id in 1 2 3; do
  [ "$id" = "$leader" ] && continue # killed above
  port=$(dc port coordinator-$id 7400 2>>"$log") || die "coordinator-$id publishes no port"
  published+=("http://$port")
done
for order in "${published[0]},${published[1]}" "${published[1]},${published[0]}"; do
  host_state=$(KHOP_LOG=warn KHOP_COORDINATORS="$order" timeout 60 "$shared/khop-host" status "$job" --json 2>>"$log" |
    json 'd["state"]' || true)
  [ "$host_state" = succeeded ] || die "khop status from the host through $order: '$host_state'"
done
say "the job read from this host through the published ports, in either order: succeeded"

# `docker stop` (SIGTERM) takes a worker out: it drains, exits 0, and shows as left at once.
stopped=$(client workers --json | json 'next((w["name"] for w in d if w["state"] == "active"), "")' || true)
[ -n "$stopped" ] || die "no active worker left to stop"
stopped_container=$(dc ps -q worker | grep "^$stopped" || true)
[ -n "$stopped_container" ] || die "worker $stopped is no container of this project"
docker stop "$stopped_container" >/dev/null || die "docker stop of worker $stopped failed"
code=$(docker inspect -f '{{.State.ExitCode}}' "$stopped_container")
[ "$code" = 0 ] || die "worker $stopped exited $code on docker stop"
state=$(client workers --json | json "next((w['state'] for w in d if w['name'] == '$stopped'), '')" || true)
[ "$state" = left ] || die "worker $stopped is '$state' after docker stop, not left"
say "worker $stopped stopped: exit 0, left"

say "passed in $(($(date +%s) - start)) s"
result=PASS
