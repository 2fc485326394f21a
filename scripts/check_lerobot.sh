#!/usr/bin/env bash
# LeRobot reads our export: generate 3 franka-push demos, export them, and check them with LeRobot's own
# LeRobotDataset and ACT policy (scripts/check_lerobot.py). LeRobot 0.4.4, the newest for Python 3.11,
# pins torch < 2.11, below ours: it gets its own venv (LEROBOT_VENV; pip pulls a CUDA torch, ~7 GB).
# Not in CI (download size); results: benchmarks/interop/lerobot_<version>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LEROBOT_VENV:-.venv-lerobot}
version=${LEROBOT_VERSION:-0.4.4}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "lerobot==$version"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/modem-ros demos generate "$work/demos" --task franka-push -n 3 img_size=84
.venv/bin/python scripts/check_lerobot.py reference "$work/demos" "$work/export" "$work/ref.npz"
mkdir -p benchmarks/interop
"$venv/bin/python" scripts/check_lerobot.py check "$work/export" "$work/ref.npz" "benchmarks/interop/lerobot_$version.json"
