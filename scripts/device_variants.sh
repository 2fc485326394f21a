#!/usr/bin/env bash
# The method comparisons of issues 18, 20 and 21 in one prepared run for a lent GPU machine (16 cores):
# every (task, method, seed) as its own process (scripts/bench_learn_parallel.sh), data made first.
#   scripts/device_variants.sh OUT_DIR DEADLINE_S TASK...      TASK = franka-push | mw-hammer | franka-pick-place
# franka-push:       modem, the safe-exploration options (18), offline data + 002 + MOTO's parts (20)
# mw-hammer:         modem, offline data + 002 + MOTO's parts (20), Vid2Act and its parts (21)
# franka-pick-place: modem, Vid2Act and its parts (21; sources franka-reach + franka-push)
# Offline data (20): ~50 mixed-quality episodes of the task (N_NOISY expert + noise 0.3, N_NOISY with noise
# 1.0, N_RANDOM random actions). Vid2Act sources (21): N_SOURCE expert + noise 0.3 episodes per source task,
# one teacher each (TEACHER_UPDATES offline updates). Everything is made under OUT_DIR/data and reused if
# there (a rerun skips it). SEEDS (default "1 2 3"), PRESET (default cpu-small), EXTRA (more key=value for
# every job and for the data, e.g. a tiny budget for a smoke test on the CPU), PY as in bench_learn_parallel.
# DEADLINE_S counts from this script's start: what data preparation takes is not given to training.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/device_variants.sh OUT_DIR DEADLINE_S TASK...}
deadline=${2:?usage: scripts/device_variants.sh OUT_DIR DEADLINE_S TASK...}
shift 2
py=${PY:-.venv/bin/python}
preset=${PRESET:-cpu-small}
seeds=${SEEDS:-1 2 3}
extra=${EXTRA:-}
data="$out/data"
mkdir -p "$data" "$out/logs"
start=$(date +%s)
mr() { OMP_NUM_THREADS=1 "$py" -m modem_ros.cli "$@"; }

# shellcheck disable=SC2086
generate() {  # TASK NAME N generate-args...: one dataset, skipped when it exists
  local task=$1 name=$2 n=$3; shift 3
  [ -d "$data/$name" ] && return 0
  mr demos generate --task "$task" --preset "$preset" -n "$n" --out "$data/$name" "$@" $extra \
    >"$out/logs/data_$name.log" 2>&1 || echo "device_variants: could not make $name (see its log)"
}
mixed() {  # TASK: the offline set of issue 20
  generate "$1" "$1-noise0.3" "${N_NOISY:-20}" --noise 0.3 --keep-failures &
  generate "$1" "$1-noise1.0" "${N_NOISY:-20}" --noise 1.0 --keep-failures &
  generate "$1" "$1-random" "${N_RANDOM:-10}" --policy random &
}
mixed_dirs() { echo "$data/$1-noise0.3,$data/$1-noise1.0,$data/$1-random"; }
# shellcheck disable=SC2086
teachers() {  # TARGET SOURCE...: one teacher per source task (generated first), for issue 21
  local target=$1; shift
  local dirs=()
  for source in "$@"; do
    generate "$source" "$source-src" "${N_SOURCE:-30}" --noise 0.3
    dirs+=("$data/$source-src")
  done
  mr pretrain-sources "$(IFS=,; echo "${dirs[*]}")" --task "$target" --preset "$preset" \
    --out "$data/teachers-$target" --updates "${TEACHER_UPDATES:-2000}" $extra \
    >"$out/logs/teachers_$target.log" 2>&1 || echo "device_variants: teachers for $target failed (see its log)"
}
teacher_files() {  # TARGET SOURCE...
  local target=$1; shift
  local files=()
  for source in "$@"; do files+=("$data/teachers-$target/$source.pt"); done
  (IFS=,; echo "${files[*]}")
}

HAMMER_SOURCES=(mw-push mw-sweep-into mw-coffee-push)
PICK_SOURCES=(franka-reach franka-push)
SAFE=(modem+agency modem+conservative modem+bounded)
OFFLINE=(modem+offline modem+offline+aug modem+offline+bcreg modem+offline+ens modem+offline+mve modem+moto)
VID2ACT=(modem+vid2act modem+vid2act-distill modem+vid2act-replay)

for task in "$@"; do  # data, in parallel across tasks
  case $task in
    franka-push) mixed franka-push ;;
    mw-hammer) mixed mw-hammer; (teachers mw-hammer "${HAMMER_SOURCES[@]}") & ;;
    franka-pick-place) (teachers franka-pick-place "${PICK_SOURCES[@]}") & ;;
    *) echo "device_variants: unknown task $task (franka-push, mw-hammer, franka-pick-place)" >&2; exit 2 ;;
  esac
done
wait
echo "device_variants: data ready after $(( $(date +%s) - start )) s"

left=$(( deadline - ($(date +%s) - start) ))
for task in "$@"; do
  case $task in
    franka-push) methods=(modem "${SAFE[@]}" "${OFFLINE[@]}")
                 overrides="offline_dirs=$(mixed_dirs franka-push)" ;;
    mw-hammer) methods=(modem "${OFFLINE[@]}" "${VID2ACT[@]}")
               overrides="offline_dirs=$(mixed_dirs mw-hammer) vid2act_teachers=$(teacher_files mw-hammer "${HAMMER_SOURCES[@]}")" ;;
    franka-pick-place) methods=(modem "${VID2ACT[@]}")
                       overrides="vid2act_teachers=$(teacher_files franka-pick-place "${PICK_SOURCES[@]}")" ;;
  esac
  jobs=()
  for seed in $seeds; do for method in "${methods[@]}"; do jobs+=("$task:$preset:$method:$seed"); done; done
  OVERRIDES="$overrides $extra" PY="$py" scripts/bench_learn_parallel.sh "$out/$task" "$left" "${jobs[@]}" \
    >"$out/logs/bench_$task.log" 2>&1 &
done
wait
echo "device_variants: done after $(( $(date +%s) - start )) s; results: $out/<task>/<task>_$preset.json"
