#!/usr/bin/env bash
# The CPU benchmark set behind BENCHMARKS.md, in one run on a quiet machine:
#   scripts/bench_cpu.sh OUT_DIR [CHECKPOINT]
# CHECKPOINT (optional): a trained toy-reach agent for the planning-budget quality sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/bench_cpu.sh OUT_DIR [CHECKPOINT]}
mkdir -p "$out"
bench() { name=$1; shift; echo "== $name"; .venv/bin/modem-ros bench "$@" device=cpu --out "$out/$name.json"; }
bench plan_mw_224            plan   --task mw-assembly --repeats 30
bench plan_door_224          plan   --task adroit-door --repeats 20
bench plan_mw_256samples     plan   --task mw-assembly --repeats 30 num_samples=256
bench plan_mw_128samples     plan   --task mw-assembly --repeats 30 num_samples=128
bench update_mw_84           update --task mw-assembly --repeats 10 --warmup 2 img_size=84
bench update_mw_224          update --task mw-assembly --repeats 5 --warmup 1
bench update_door_224        update --task adroit-door --repeats 3 --warmup 1
if [ -n "${2:-}" ]; then
  echo "== budgets"
  .venv/bin/modem-ros bench budgets --checkpoint "$2" --episodes 20 --device cpu --out "$out/budgets_toy.json"
fi
