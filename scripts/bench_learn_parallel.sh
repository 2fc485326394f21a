#!/usr/bin/env bash
# `modem-ros bench learn` with every (task, preset, method, seed) as its own process, for a machine with
# many cores and a GPU (on the 2-core CPU, run `bench learn` itself: it runs them one after another).
#   scripts/bench_learn_parallel.sh OUT_DIR DEADLINE_S JOB...     JOB = TASK:PRESET:METHOD:SEED
# Each job writes OUT_DIR/json/TASK_PRESET_METHOD_SEED.json and its run directory under OUT_DIR/runs.
# At DEADLINE_S seconds the jobs still training are stopped; every job's evaluations so far are then
# recorded (`--collect`: a stopped run is `complete: false`) and merged per task and preset into
# OUT_DIR/TASK_PRESET.json (+ .png). PY names the interpreter (default .venv/bin/python). OVERRIDES adds
# key=value config overrides to every job, e.g. OVERRIDES="offline_dirs=data/push-mixed
# vid2act_teachers=teachers/franka-reach.pt" (bench learn gives each to the methods it belongs to).
# One torch thread per job (OMP_NUM_THREADS=1): several jobs per core oversubscribe the CPU otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/bench_learn_parallel.sh OUT_DIR DEADLINE_S TASK:PRESET:METHOD:SEED...}
deadline=${2:?usage: scripts/bench_learn_parallel.sh OUT_DIR DEADLINE_S TASK:PRESET:METHOD:SEED...}
shift 2
py=${PY:-.venv/bin/python}
mkdir -p "$out/json" "$out/logs"

args_of() {  # JOB -> bench learn arguments (a preset of "reference" means none)
  IFS=: read -r task preset method seed <<<"$1"
  local p=(); [ "$preset" = reference ] || p=(--preset "$preset")
  echo "--task $task ${p[*]} --methods $method --seed $seed --runs-root $out/runs"\
       "--out $out/json/${task}_${preset}_${method}_${seed}.json ${OVERRIDES:-}"
}

start=$(date +%s)
pids=()
for job in "$@"; do
  IFS=: read -r task preset method seed <<<"$job"
  [ -n "$seed" ] || { echo "bench_learn_parallel: job '$job' is not TASK:PRESET:METHOD:SEED" >&2; exit 2; }
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=1 nohup "$py" -m modem_ros.cli bench learn $(args_of "$job") \
    >"$out/logs/${task}_${preset}_${method}_${seed}.log" 2>&1 &
  pids+=($!)
  echo "bench_learn_parallel: started $job (pid $!)"
done

while :; do
  running=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
  elapsed=$(( $(date +%s) - start ))
  [ "$running" -eq 0 ] && break
  if [ "$elapsed" -ge "$deadline" ]; then
    echo "bench_learn_parallel: deadline ${deadline}s reached, stopping $running job(s)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 10
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    break
  fi
  sleep 5
done
wait 2>/dev/null
echo "bench_learn_parallel: training ended after $(( $(date +%s) - start )) s"

# Evaluations of every job (complete or stopped), then one merged result per task and preset.
for job in "$@"; do
  IFS=: read -r task preset method seed <<<"$job"
  # shellcheck disable=SC2046
  (OMP_NUM_THREADS=1 "$py" -m modem_ros.cli bench learn $(args_of "$job") --collect \
     >>"$out/logs/${task}_${preset}_${method}_${seed}.log" 2>&1 \
     || echo "bench_learn_parallel: could not collect $job (see its log)") &
done
wait
for group in $(printf '%s\n' "$@" | cut -d: -f1,2 | sort -u); do
  IFS=: read -r task preset <<<"$group"
  parts=("$out"/json/"${task}_${preset}"_*.json)
  [ -e "${parts[0]}" ] || { echo "bench_learn_parallel: no results for $group"; continue; }
  "$py" -m modem_ros.cli bench learn --task "$task" --merge "${parts[@]}" --out "$out/${task}_${preset}.json"
done
