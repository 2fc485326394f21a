"""`modem-ros bench learn`: learning curves of MoDem and its baselines, per seed, resumable.

Methods, all on the same task, preset, seeds, demos and evaluation episodes:
- modem: the reference MoDem (BC -> BC seeding -> seed updates -> interactive, kappa oversampling);
- bc: the phase-1 policy alone (its mean, no planning), evaluated once: it uses no interaction;
- tdmpc: TD-MPC without demos (MoDem's own ablation): no BC, uniform random seeding, no demo batches.

Each (method, seed) trains in its own run directory, storing every episode and `latest.pt` after each
one, so a run stopped at any point resumes where it was; finished runs are kept in the result JSON and
not run again. The JSON (`{"task", "preset", "runs": [{"method", "seed", "env_steps", "success",
"return", ...}]}`) is rewritten atomically after each run, with a PNG of mean and spread per method.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from modem_ros.config import ModemConfig, load_config
from modem_ros.data.demos import episode_dirs, read_episode, write_episode
from modem_ros.data.episode import eval_episode_seed
from modem_ros.plots import eval_records, metrics_records
from modem_ros.robots.safety_audit import audit_run
from modem_ros.run import build_trainer, ensure_demos
from modem_ros.trainer import Trainer, run_episode

# The config of each method relative to the task's (reference MoDem = no change).
METHODS: dict[str, dict[str, str]] = {
    "modem": {},
    "bc": {},
    "tdmpc": {"demos": "0", "seeding": "uniform", "kappa_init": "0", "kappa_final": "0"},
    # with offline data (pass offline_dirs=...; the other methods run without it): the offline phase, + paper
    # 002's augmentation, + each of MOTO's three parts alone (behaviour regularisation, the ensemble's
    # penalty, value expansion), + MOTO whole
    "modem+offline": {"offline_steps": "1000"},
    "modem+offline+aug": {"offline_steps": "1000", "offline_aug_ratio": "0.5"},
    "modem+offline+bcreg": {"offline_steps": "1000", "bc_reg_coef": "1.0"},
    "modem+offline+ens": {"offline_steps": "1000", "moto_ensemble": "5"},
    "modem+offline+mve": {"offline_steps": "1000", "moto_ensemble": "5", "moto_penalty": "0",
                          "moto_mve_horizon": "3"},
    "modem+moto": {"offline_steps": "1000", "bc_reg_coef": "1.0", "moto_ensemble": "5", "moto_mve_horizon": "3"},
    # MOTO whole with its critic off the representation, as MOTO's own: on TD-MPC's latent the TD gradient
    # otherwise carries value expansion's pull into the encoder (BENCHMARKS.md, `modem+moto`)
    "modem+moto+detached-critic": {"offline_steps": "1000", "bc_reg_coef": "1.0", "moto_ensemble": "5",
                                   "moto_mve_horizon": "3", "moto_critic_detached": "true"},
    # the offline phase with that critic and no other MOTO part: what detaching alone costs or gives
    "modem+offline+detached-critic": {"offline_steps": "1000", "moto_critic_detached": "true"},
    # interventions as data (issue 18), sim only: a scripted stand-in for the operator takes over with the
    # env's expert after 5 steps without progress, for 10 (sim_operator.py)
    "modem+operator": {"sim_operator_patience": "5", "sim_operator_steps": "10"},
    # MoDem-V2's safe exploration (issue 18): each part alone
    "modem+agency": {"agency_transfer_steps": "1000"},
    "modem+conservative": {"q_ensemble": "5"},
    "modem+bounded": {"plan_max_action": "0.5", "plan_max_delta": "0.5"},
    # transfer from other tasks (pass vid2act_teachers=..., made by `modem-ros pretrain-sources`; the other
    # methods run without them): Vid2Act whole, and each of its two parts alone
    "modem+vid2act": {},
    "modem+vid2act-distill": {"vid2act_replay_coef": "0"},
    "modem+vid2act-replay": {"vid2act_distill_coef": "0"},
}


# Data that is some methods' difference, not the task's: only those methods get it (in any other method's
# replay, "modem" would no longer be MoDem from its demos), and they are refused without it.
METHOD_DATA = {
    "vid2act_teachers": (lambda m: "vid2act" in m, "teachers from `modem-ros pretrain-sources`"),
    "offline_dirs": (lambda m: int(METHODS[m].get("offline_steps", "0")) > 0,
                     "datasets from `modem-ros demos generate`"),
}


# Budgets a method sets that a run may change for all of them at once (key=value): a longer offline phase
# is the same comparison at another budget, not another method. Any other method key wins over overrides.
METHOD_BUDGETS = ("offline_steps",)


def method_settings(method: str, overrides: dict[str, str]) -> dict[str, str]:
    """What `method` changes from the task's config, with the run's budgets (METHOD_BUDGETS) applied to
    the methods that have them."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return {k: overrides.get(k, v) if k in METHOD_BUDGETS else v for k, v in METHODS[method].items()}


def method_config(task: str, preset: str | None, method: str, seed: int, overrides: dict[str, str]) -> ModemConfig:
    settings = method_settings(method, overrides)
    overrides = {k: v for k, v in overrides.items() if k not in METHOD_BUDGETS}  # only the methods that have them
    for key, (takes, made_by) in METHOD_DATA.items():
        if not takes(method):
            overrides = {k: v for k, v in overrides.items() if k != key}
        elif not overrides.get(key):
            raise ValueError(f"method {method} needs {key}=... ({made_by})")
    return load_config(task, {**overrides, **settings, "seed": str(seed)}, preset=preset)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> dict[str, Any]:
    """Where a run ran. The CPU's model and vector ISA belong here: the planner's GEMM kernel follows the
    CPU (networks.ONEDNN_LINEAR) and the libraries' kernels the ISA, so one seed is a different float
    computation on another host kind, and its curve may differ (the main job: 1.0 at agent step 2000 on
    an AMX Xeon, 0.8 on an AVX-512 EPYC)."""
    import torch

    from modem_ros.bench import machine_info  # the speed benches' record of the host: one place reads it

    host = machine_info(torch.device("cpu"))
    return {"host_cpu": host["cpu"], "cpu_isa": host["cpu_isa"],
            "planning_kernels_default": host["planning_kernels_default"], "cores": host["cpu_count"],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def _evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """Eval records of a run's metrics.jsonl, the last one per step (a resume may repeat one)."""
    by_step = {int(r["step"]): r for r in eval_records(run_dir / "metrics.jsonl")}
    return [by_step[s] for s in sorted(by_step)]


def train_resumable(cfg: ModemConfig, run_dir: Path, log_stream=None) -> Trainer:
    """Train with every episode stored and latest.pt written after each one; resume from them."""
    trainer = build_trainer(cfg, run_dir, log_stream=log_stream)
    episodes_dir, latest = run_dir / "episodes", run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        def stored(n: int):
            paths = episode_dirs(episodes_dir) if episodes_dir.is_dir() else []
            for extra in paths[n:]:  # collected after the checkpoint: not trained on, collected again
                shutil.rmtree(extra)
            return [read_episode(p, cfg.frame_stack).episode for p in paths[:n]]
        trainer.resume(latest, stored)
    else:
        trainer.begin()
    while not trainer.done:
        start = time.perf_counter()
        episode = trainer.collect_episode()
        write_episode(episode, episodes_dir / f"episode_{trainer.episodes:06d}",
                      {"task": cfg.task, "source": "bench-learn", "episode": trainer.episodes})
        trainer.after_episode(episode, time.perf_counter() - start)
        trainer.save("latest.pt")
    trainer.finish()
    return trainer


def evaluate_bc(cfg: ModemConfig, run_dir: Path, log_stream=None) -> list[dict[str, Any]]:
    """Phase 1 only, then the policy mean on the evaluation episodes (env step 0: no interaction)."""
    trainer = build_trainer(cfg, run_dir, log_stream=log_stream)
    trainer.pretrain_policy()
    env = trainer.eval_env
    episodes = [run_episode(env, lambda obs, t: trainer.agent.policy_action(obs), seed=eval_episode_seed(i))
                for i in range(cfg.eval_episodes)]
    record = {"kind": "eval", "step": 0, "env_step": 0,
              "episode_return": float(np.mean([e.total_reward for e in episodes])),
              "success_rate": float(np.mean([e.succeeded for e in episodes]))}
    trainer.logger.log("eval", 0, {k: v for k, v in record.items() if k not in ("kind", "step")})
    return [record]


# The code this process runs, read once at start (HEAD may move while a run trains); MODEM_ROS_COMMIT names
# it where the tree is a copy without .git (a lent machine).
COMMIT = os.environ.get("MODEM_ROS_COMMIT") or _commit()


def run_one(cfg: ModemConfig, method: str, run_dir: Path, log_stream=None) -> dict[str, Any]:
    start = time.time()
    if method == "bc":
        evaluations = evaluate_bc(cfg, run_dir, log_stream)
    else:
        train_resumable(cfg, run_dir, log_stream)
        evaluations = _evaluations(run_dir)
    return run_record(cfg, method, run_dir, evaluations, start)


def _run_finished(run_dir: Path) -> bool:
    """A run that reached its last step wrote final.pt; a bc run is finished with its one evaluation."""
    return (run_dir / "checkpoints" / "final.pt").exists() or run_dir.parent.name == "bc"


def run_record(cfg: ModemConfig, method: str, run_dir: Path, evaluations: list[dict[str, Any]],
               start: float) -> dict[str, Any]:
    record = {"method": method, "seed": cfg.seed,
            "agent_steps": [int(e["step"]) for e in evaluations],
            "env_steps": [int(e["step"]) * cfg.action_repeat for e in evaluations],
            "success": [float(e["success_rate"]) for e in evaluations],
            "return": [float(e["episode_return"]) for e in evaluations],
            "train_seconds": round(_train_seconds(run_dir), 1),
            "training_episodes": _training_episodes(run_dir),
            "wall_s_last_session": round(time.time() - start, 1), "run_dir": str(run_dir), "complete": True}
    offline = _offline_phase(run_dir)
    if offline:
        record["offline"] = offline
    if cfg.suite == "franka" and (run_dir / "episodes").is_dir():  # what the robot's safety layer would do
        record["safety"] = audit_run(run_dir / "episodes", cfg.action_repeat)
    return record


OFFLINE_KEYS = ("updates_done", "q_bias", "q_abs_error", "seconds_per_update", "total_loss", "value_loss")


def _offline_phase(run_dir: Path) -> dict[str, Any]:
    """The finished offline phase's numbers (issue 20): the critic's bias against the true discounted
    return on held-out offline episodes, time per update, its last losses; and `q_curve`, the bias and
    mean |error| at each tenth of the phase ([updates_done, q_bias, q_abs_error] rows). Empty without one."""
    found: dict[str, Any] = {}
    curve: dict[int, list[float]] = {}  # by updates_done: a resumed phase logs a tenth again
    for record in metrics_records(run_dir / "metrics.jsonl", "offline"):
        if "q_bias" in record:
            curve[int(record["updates_done"])] = [record["q_bias"], record["q_abs_error"]]
        if record.get("updates_done") == record.get("updates_total"):
            found = {k: record[k] for k in OFFLINE_KEYS if k in record}
    if found and curve:
        found["q_curve"] = [[done, *curve[done]] for done in sorted(curve)]
    return found


def _train_seconds(run_dir: Path) -> float:
    """Collection + update time summed over a run's train records (survives resumes; evals excluded)."""
    return sum(float(r.get("seconds", 0.0)) for r in metrics_records(run_dir / "metrics.jsonl", "train"))


def _training_episodes(run_dir: Path) -> dict[str, list[int]]:
    """Training episodes that succeeded, per phase and in all: {phase: [succeeded, episodes]}. Keyed by
    the episode's last step, so an episode a resumed run logged twice counts once."""
    by_step = {int(r["step"]): r for r in metrics_records(run_dir / "metrics.jsonl", "train") if "step" in r}
    counts: dict[str, list[int]] = {"all": [0, 0]}
    for record in by_step.values():
        for key in ("all", str(record.get("phase", "unknown"))):
            counts.setdefault(key, [0, 0])
            counts[key][0] += bool(record.get("success"))
            counts[key][1] += 1
    return counts


def write_json_atomic(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def run_learning_bench(task: str, preset: str | None, seeds: list[int], methods: list[str],
                       overrides: dict[str, str], out: Path, runs_root: Path,
                       log: Callable[[str], None] = print, log_stream=None,
                       collect_only: bool = False) -> dict[str, Any]:
    """Run every (method, seed) not yet complete in `out`; rewrite `out` and its PNG after each.
    collect_only: train nothing, record what each run directory holds (a run stopped early with
    `complete: false`), e.g. after a time-boxed run on a lent machine."""
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result.update({"task": task, "preset": preset or "reference", "overrides": overrides,
                   "machine": _machine(), "methods": {m: method_settings(m, overrides) for m in methods}})
    result.setdefault("runs", [])
    result.setdefault("config", {})
    for seed in seeds:
        for method in methods:
            if any(r["method"] == method and r["seed"] == seed and r.get("complete") for r in result["runs"]):
                log(f"bench learn: {method} seed {seed} already complete in {out}")
                continue
            cfg = method_config(task, preset, method, seed, overrides)
            if cfg.demos:  # the same demos for every method and seed that uses them
                cfg = replace(cfg, demo_dir=str(ensure_demos(replace(cfg, seed=1), log=log)))
            result["config"][method] = cfg.to_dict()
            run_dir = runs_root / f"{task}_{result['preset']}" / method / f"seed{seed}"
            log(f"bench learn: {method} seed {seed} in {run_dir}")
            if collect_only:
                run = _stopped_run(cfg, method, run_dir, log)
                if run is None:
                    continue
            else:
                try:
                    run = run_one(cfg, method, run_dir, log_stream)
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what it learned so far in `out`, then stop
                    run = _stopped_run(cfg, method, run_dir, log)
                    if run is not None:
                        _record(result, run, out, log)
                    log(f"bench learn: {method} seed {seed} interrupted; its stored episodes and latest.pt are "
                        f"kept in {run_dir}: the same command resumes it")
                    raise
            _record(result, run, out, log)
    return result


def _stopped_run(cfg: ModemConfig, method: str, run_dir: Path, log: Callable[[str], None]) -> dict | None:
    """What a run directory holds so far (`complete: false` unless it reached its last step)."""
    evaluations = _evaluations(run_dir)
    if not evaluations:
        log(f"bench learn: {method} seed {cfg.seed}: no evaluations in {run_dir}")
        return None
    run = run_record(cfg, method, run_dir, evaluations, start=time.time())
    run["complete"] = _run_finished(run_dir)
    return run


def _record(result: dict[str, Any], run: dict[str, Any], out: Path, log: Callable[[str], None]) -> None:
    """Put `run` in `result` (replacing the same method and seed) and rewrite `out` and its PNG."""
    run["commit"] = COMMIT
    run["machine"] = _machine()
    result["runs"] = [r for r in result["runs"] if not (r["method"] == run["method"] and r["seed"] == run["seed"])]
    result["runs"].append(run)
    write_json_atomic(result, out)
    plot_result(result, out)
    log(f"bench learn: {run['method']} seed {run['seed']}: success {run['success']} at env steps {run['env_steps']}")
    if "safety" in run:
        rates = run["safety"]["per_1000_steps"]
        log(f"bench learn: {run['method']} seed {run['seed']}: the robot's safety layer on its training actions, per "
            f"1000 agent steps: " + ", ".join(f"{k} {v}" for k, v in rates.items()))


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several of the same task and preset (seeds or methods run in parallel, on other
    machines): runs keyed by (method, seed), a complete run winning over a partial one, else the later
    part; each part's machine kept with its runs."""
    if not parts:
        raise ValueError("bench learn --merge: nothing to merge")
    keys = {(p.get("task"), p.get("preset")) for p in parts}
    if len(keys) > 1:
        raise ValueError(f"bench learn --merge: parts of different task/preset {sorted(map(str, keys))}")
    merged: dict[str, Any] = {k: v for k, v in parts[0].items() if k != "runs"}
    merged["config"], merged["methods"], runs = {}, {}, {}
    for part in parts:
        merged["config"].update(part.get("config", {}))
        merged["methods"].update(part.get("methods", {}))
        for run in part.get("runs", []):
            key = (run["method"], run["seed"])
            if key not in runs or run.get("complete") or not runs[key].get("complete"):
                runs[key] = {**run, "machine": run.get("machine", part.get("machine"))}
    merged.pop("machine", None)
    merged["runs"] = [runs[k] for k in sorted(runs, key=lambda k: (k[0], k[1]))]
    return merged


def summary_table(result: dict[str, Any]) -> str:
    """Task x method: mean (min-max) success at each evaluated env step, over seeds."""
    lines = [f"{result['task']} ({result['preset']}): eval success, mean over seeds [min-max]"]
    for method in sorted({r["method"] for r in result["runs"]}):
        runs = [r for r in result["runs"] if r["method"] == method]
        steps = sorted({s for r in runs for s in r["env_steps"]})
        cells = []
        for step in steps:
            vals = [r["success"][r["env_steps"].index(step)] for r in runs if step in r["env_steps"]]
            cells.append(f"{step}: {np.mean(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}] (n={len(vals)})")
        lines.append(f"  {method:<6} " + "; ".join(cells))
    counted = [r for r in result["runs"] if r.get("training_episodes", {}).get("all", [0, 0])[1]]
    if counted:
        lines.append("training episodes that succeeded, per seed (succeeded/episodes):")
        for method in sorted({r["method"] for r in counted}):
            got = sorted((r["seed"], r["training_episodes"]["all"]) for r in counted if r["method"] == method)
            lines.append(f"  {method:<6} " + ", ".join(f"seed {seed} {k}/{n}" for seed, (k, n) in got))
    audited = [r for r in result["runs"] if "safety" in r]
    if audited:
        lines.append("the robot's safety layer on the training actions, per 1000 agent steps, mean over seeds "
                     "(clips / holds / faults):")
        for method in sorted({r["method"] for r in audited}):
            rates = [r["safety"]["per_1000_steps"] for r in audited if r["method"] == method]
            lines.append(f"  {method:<6} " + " / ".join(f"{np.mean([x[k] for x in rates]):.1f}"
                                                        for k in ("clips", "holds", "faults")) + f" (n={len(rates)})")
    pretrained = [r for r in result["runs"] if "q_bias" in r.get("offline", {})]
    if pretrained:
        lines.append("after the offline phase, the critic against the true discounted return on held-out offline "
                     "episodes, mean over seeds (bias / mean |error|):")
        for method in sorted({r["method"] for r in pretrained}):
            got = [r["offline"] for r in pretrained if r["method"] == method]
            lines.append(f"  {method:<6} {np.mean([x['q_bias'] for x in got]):+.3f} / "
                         f"{np.mean([x['q_abs_error'] for x in got]):.3f} (n={len(got)})")
    return "\n".join(lines)


def plot_result(result: dict[str, Any], out: Path) -> list[Path]:
    """The figures of a result file `out`: its learning curves (<out>.png) and, when a run pretrained
    offline and measured its critic, the critic's bias over the offline phase (<out>_critic.png)."""
    written = [out.with_suffix(".png")]
    plot_learning(result, written[0])
    if any("q_curve" in r.get("offline", {}) for r in result["runs"]):
        written.append(out.with_name(out.stem + "_critic.png"))
        plot_critic(result, written[1])
    return written


def plot_critic(result: dict[str, Any], path: Path) -> None:
    """Per offline run: the critic's bias against the true discounted return on held-out offline episodes
    (Q - return; > 0 = overestimation) at each tenth of the offline phase, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run in sorted(result["runs"], key=lambda r: (r["method"], r["seed"])):
        curve = np.array(run.get("offline", {}).get("q_curve", []), dtype=float)
        if len(curve):
            ax.plot(curve[:, 0], curve[:, 1], marker=".", label=f"{run['method']} seed {run['seed']}")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("offline updates")
    ax.set_ylabel("critic bias on held-out episodes")
    ax.set_title(f"{result['task']} ({result['preset']}): Q - discounted return")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_learning(result: dict[str, Any], path: Path) -> None:
    """Mean +- min/max band of success per method against env steps; BC as a flat line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    last_step = max((s for r in result["runs"] for s in r["env_steps"]), default=1)
    for method in sorted({r["method"] for r in result["runs"]}):
        runs = [r for r in result["runs"] if r["method"] == method]
        steps = sorted(set.intersection(*[set(r["env_steps"]) for r in runs]))
        vals = np.array([[r["success"][r["env_steps"].index(s)] for s in steps] for r in runs])
        if method == "bc" and steps == [0]:  # no interaction: the same policy at every budget
            steps, vals = [0, last_step], np.repeat(vals, 2, axis=1)
        ax.plot(steps, vals.mean(0), label=f"{method} (n={len(runs)})")
        ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.2)
    ax.set_xlabel("environment steps (agent steps x action_repeat)")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{result['task']} ({result['preset']})")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
