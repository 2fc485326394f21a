#!/usr/bin/env bash
# Install modem_ros into ./.venv with the extras named on the command line (comma- or space-separated):
#   scripts/install.sh              core: agent, plain-Python training, CLI
#   scripts/install.sh test         + pytest, hypothesis, ruff
#   scripts/install.sh sim,ros      + MuJoCo suites / ROS 2 Kilted wheels (see README)
# Idempotent: a second run only installs what is missing. Honours $PYTHON and $VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=$(echo "${*:-}" | tr ' ' ',' | sed 's/^,*//; s/,*$//')

# Debian packages some extras need at run time (offscreen MuJoCo rendering, RealSense USB).
apt_packages=()
case ",$EXTRAS," in *,sim,*) apt_packages+=(libegl1 libegl-mesa0 libgl1-mesa-dri) ;; esac
case ",$EXTRAS," in *,hw,*|*,test,*) apt_packages+=(libusb-1.0-0) ;; esac
# the sim operator view (Tk, the standard library's GUI) and, for its test, a virtual X server
case ",$EXTRAS," in *,sim,*) "$PYTHON" -c 'import tkinter' 2>/dev/null || apt_packages+=(python3-tk) ;; esac
case ",$EXTRAS," in *,test,*) apt_packages+=(xvfb) ;; esac
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then apt_packages+=(python3-venv); fi
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install: Debian packages ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "install: Python >= 3.10 required, $PYTHON is $("$PYTHON" --version)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# torch first: otherwise a dependency's plain `torch` requirement pulls the newest CUDA build (GBs).
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: torch 2.13.0 (CUDA machine)"
  else
    echo "install: torch 2.13.0 (CPU)"
  fi
  "${pip[@]}" torch==2.13.0
fi
spec="."
[ -z "$EXTRAS" ] || spec=".[$EXTRAS]"
echo "install: modem_ros ${spec}"
"${pip[@]}" -e "$spec"
# franky-sim, the Franka (FCI) server the tests and dry runs drive: mujoco 4 + numpy 2.4, which break
# dm_control, so it lives in its own venv and runs as its own process (tests find it at $VENV-franky-sim).
case ",$EXTRAS," in *,hw,*|*,test,*)
  if [ ! -x "$VENV-franky-sim/bin/franky-sim" ]; then
    echo "install: franky-sim 1.0.4 into $VENV-franky-sim"
    "$PYTHON" -m venv "$VENV-franky-sim"
    "$VENV-franky-sim/bin/python" -m pip install -q --disable-pip-version-check franky-sim==1.0.4
  fi ;;
esac
"$VENV/bin/python" -c 'import modem_ros, torch; print(f"install: ok (torch {torch.__version__})")'
