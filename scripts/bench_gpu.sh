#!/usr/bin/env bash
# The GPU benchmark set behind BENCHMARKS.md's GPU section, in one run on a CUDA machine:
#   scripts/bench_gpu.sh OUT_DIR [plan|update|all]
# PY names the interpreter (default .venv/bin/python; a device machine's own torch: PY=python3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/bench_gpu.sh OUT_DIR [plan|update|all]}
which=${2:-all}
py=${PY:-.venv/bin/python}
mkdir -p "$out"
bench() { name=$1; shift; echo "== $name"; "$py" -m modem_ros.cli bench "$@" device=cuda --out "$out/$name.json"; }
if [ "$which" != update ]; then
  bench plan_mw_224_eager         plan --task mw-assembly --repeats 100 cuda_graph=false
  bench plan_mw_224_graph         plan --task mw-assembly --repeats 100
  bench plan_mw_224_graph_bf16    plan --task mw-assembly --repeats 100 amp_bf16=true
  bench plan_mw_84_graph          plan --task mw-assembly --repeats 100 img_size=84
  bench plan_door_224_graph       plan --task adroit-door --repeats 100
fi
if [ "$which" != plan ]; then
  bench update_mw_224_fp32          update --task mw-assembly --repeats 30
  bench update_mw_224_bf16          update --task mw-assembly --repeats 30 amp_bf16=true
  bench update_mw_224_compiled_bf16 update --task mw-assembly --repeats 30 --warmup 5 compile=true amp_bf16=true
  bench update_mw_84_compiled_bf16  update --task mw-assembly --repeats 30 --warmup 5 img_size=84 compile=true amp_bf16=true
fi
