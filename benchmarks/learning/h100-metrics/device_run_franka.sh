#!/usr/bin/env bash
# One lent-GPU session: issue 17's learning table at the cpu-small budget, every job its own process.
set -uo pipefail
T0=$(date +%s)
W=/tmp/w; mkdir -p $W/logs
pack() { cd /tmp/w && tar czf "$OUT/results.tar.gz" --exclude='*.pt' --exclude='episodes' --exclude='videos' \
  --exclude='events.out.*' . 2>/dev/null; echo "packed at $(( $(date +%s) - T0 )) s"; }
trap pack EXIT
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PY=python3 MODEM_ROS_DATA=$PWD/.carry MUJOCO_GL=egl PYTHONUNBUFFERED=1
export MODEM_ROS_COMMIT=$(cat .carry/commit)
e=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; [ -f $e ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$e
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc
if command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
  if nvidia-cuda-mps-control -d && timeout 45 python3 -c "import torch; print('mps probe', torch.ones(2, device='cuda').sum().item())"; then
    echo "MPS: on"
  else
    echo quit | timeout 10 nvidia-cuda-mps-control; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY; echo "MPS: off"
  fi
else echo "MPS: not installed"; fi
timeout 60 python3 - <<'PY'
import time, torch, numpy, mujoco
print("torch", torch.__version__, "numpy", numpy.__version__, "mujoco", mujoco.__version__, torch.cuda.get_device_name())
from modem_ros.config import load_config
from modem_ros.envs import make_env
env = make_env(load_config("franka-push", {}, preset="cpu-small"), seed=1)
obs = env.reset(seed=1); t = time.perf_counter()
for _ in range(50):
    obs, r, done, info = env.step(numpy.zeros(4, dtype=numpy.float32))
print("preflight: 50 env steps with rendering", round(time.perf_counter() - t, 3), "s; image", {k: v.shape for k, v in obs.items()})
PY
nvidia-smi dmon -s um -d 15 > $W/logs/gpu_dmon.txt 2>&1 &
jobs=()
for t in franka-reach franka-push; do for s in 1 2 3; do for m in modem tdmpc bc; do jobs+=("$t:cpu-small:$m:$s"); done; done; done
jobs+=(franka-pick-place:cpu-small:modem:1 franka-pick-place:cpu-small:tdmpc:1 franka-pick-place:cpu-small:bc:1)
echo "setup done at $(( $(date +%s) - T0 )) s; ${#jobs[@]} jobs"
bash scripts/bench_learn_parallel.sh $W ${DEADLINE:-430} "${jobs[@]}"
kill %1 2>/dev/null; nvidia-smi --query-gpu=memory.used --format=csv
echo "done at $(( $(date +%s) - T0 )) s"
