#!/usr/bin/env bash
# The success classifier (issue 18) on franka-push sim episodes: trained on one set, judged with --check on
# episodes from other reset seeds, at several training lengths. Writes franka-push_classifier.json here.
#   benchmarks/classifier/push_classifier.sh WORK_DIR [STEPS...]     (default steps: 500 2000 5000)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:?usage: push_classifier.sh WORK_DIR [STEPS...]}; shift
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(500 2000 5000)
mr() { OMP_NUM_THREADS=1 .venv/bin/python -m modem_ros.cli "$@"; }
gen() { [ -d "$work/$1" ] || mr demos generate --task franka-push --preset cpu-small --out "$work/$1" "${@:2}"; }
gen train-noise0.3 -n 30 --noise 0.3 --keep-failures            # reset seeds 1000.. (seed=1)
gen train-noise1.0 -n 20 --noise 1.0 --keep-failures
gen test-noise0.3 -n 20 --noise 0.3 --keep-failures seed=7      # reset seeds 7000..: never trained on
gen test-noise1.0 -n 10 --noise 1.0 --keep-failures seed=7
gen test-noise1.0-b -n 20 --noise 1.0 --keep-failures seed=8
train="$work/train-noise0.3,$work/train-noise1.0"
test="$work/test-noise0.3,$work/test-noise1.0,$work/test-noise1.0-b"
for n in "${steps[@]}"; do
  mr classifier "$train" --task franka-push --preset cpu-small --steps "$n" --out "$work/clf_$n.pt" \
    | sed '/^(written to/d' > "$work/train_$n.json"
  mr classifier "$test" --task franka-push --preset cpu-small --check "$work/clf_$n.pt" > "$work/check_$n.json"
done
.venv/bin/python - "$work" "${steps[@]}" <<'PY'
import json, subprocess, sys
import torch
from modem_ros.bench import machine_info
work, steps = sys.argv[1], sys.argv[2:]
out = {"task": "franka-push", "preset": "cpu-small", "commit": subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip(),
       "machine": machine_info(torch.device("cpu")), "train": "train-noise0.3 (30, seed 1), train-noise1.0 (20, seed 1)",
       "check": "test-noise0.3 (20, seed 7), test-noise1.0 (10, seed 7), test-noise1.0-b (20, seed 8)",
       "runs": [{"steps": int(n), "train_report": json.load(open(f"{work}/train_{n}.json")),
                 "check": json.load(open(f"{work}/check_{n}.json"))} for n in steps]}
json.dump(out, open("benchmarks/classifier/franka-push_classifier.json", "w"), indent=1)
for r in out["runs"]:
    t, c = r["train_report"], r["check"]
    print(f"steps {r['steps']}: threshold {t['threshold']:.3f} held-out fpr {t['heldout_fpr']:.3f} tpr {t['heldout_tpr']:.3f} | "
          f"new episodes: fpr {c['fpr']:.4f} tpr {c['tpr']:.3f}, failed episodes rewarded {c['false_success_episodes']}/"
          f"{c['failed_episodes']}, successes missed {c['missed_success_episodes']}/{c['success_episodes']}, early {c['early_episodes']}")
PY
