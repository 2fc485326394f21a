"""MoDem's three phases as a loop over injected parts: env, agent, demo and replay buffers, logger.

1. policy pretraining: bc_iterations BC steps on demo snippets;
2. seeding: episodes that start before seed_steps are collected by the noisy BC policy; the first
   episode that starts at or after it is planned, then seed_steps model updates on demos + seed data
   (world model, reward and critic pretraining) - the reference's order;
3. interactive learning: MPPI collects episodes; after each, one update per step collected.
Update i after the episode that began at agent step s runs at step s + i (kappa, target EMA, std
bound), and an episode acts with the step it began at (seeding, horizon), as the reference does.
Weights carry across phases (one agent throughout). Evaluation and checkpoint cadences count env steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modem_ros.agent import schedules
from modem_ros.agent.modem import CheckpointWriteError, ModemAgent
from modem_ros.agent.offline import q_vs_return
from modem_ros.config import ModemConfig
from modem_ros.data.episode import Episode, eval_episode_seed, train_episode_seed
from modem_ros.data.replay import BufferFullError, EpisodeBuffer, sample_mixed, write_back_priorities
from modem_ros.envs.base import EnvAdapter
from modem_ros.plots import learning_curve
from modem_ros.sim_operator import ScriptedOperator


class ResumeError(RuntimeError):
    """No checkpoint of the run can be loaded (the message lists each one and why)."""


class Logger(Protocol):
    def log(self, kind: str, step: int, metrics: dict[str, Any]) -> None: ...


def run_episode(env: EnvAdapter, policy, seed: int | None = None, operator: ScriptedOperator | None = None,
                ) -> Episode:
    """Roll out `policy(obs, t)` for one episode; `t` is the agent step within the episode. With an
    `operator`, the steps it takes over are the env's expert's, flagged as interventions."""
    obs = env.reset(seed=seed)
    episode = Episode.start(obs)
    if operator is not None:
        operator.reset()
    done, t = False, 0
    while not done:
        intervened = operator is not None and operator.engaged()
        action = env.expert_action() if intervened else policy(obs, t)
        obs, reward, done, info = env.step(action)
        success = bool(info.get("success", False))
        episode.add(action, obs, reward, success, intervened)
        if operator is not None:
            operator.observe(reward, success, info.get("goal_distance"))
        t += 1
    return episode


def expert_episode(env: EnvAdapter, seed: int) -> Episode:
    """One episode of the env's scripted expert."""
    return run_episode(env, lambda obs, t: env.expert_action(), seed=seed)


def scripted_demos(env: EnvAdapter, n: int, seed: int) -> list[Episode]:
    """Episodes of the env's scripted expert, seeds seed, seed+1, ..."""
    return [expert_episode(env, seed + i) for i in range(n)]


def burst_progress(metrics: dict[str, Any]) -> dict[str, float]:
    """What a long update burst reports every tenth: its loss, the policy's saturation and critic
    gradient, and Vid2Act's weight per source (they move most in the seed burst)."""
    keys = [k for k in metrics if k in ("total_loss", "pi_saturation", "pi_q_grad") or k.startswith("vid2act_w/")]
    return {k: float(metrics[k]) for k in keys}


@dataclass
class Trainer:
    cfg: ModemConfig
    env: EnvAdapter | None  # None in the ROS graph, where the sim bridge owns the env
    agent: ModemAgent
    demo_buffer: EpisodeBuffer
    replay_buffer: EpisodeBuffer
    logger: Logger
    eval_env: EnvAdapter | None = None
    run_dir: Path | None = None
    step: int = 0
    phases: list[tuple[str, int]] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    episodes: int = 0
    run_id: str = ""  # the run's identity, saved in every checkpoint (announce.py checks it)
    heldout: list[Episode] = field(default_factory=list)  # offline episodes kept out, to measure the critic
    _model_pretrained: bool = False
    _bc_done: bool = False
    _offline_next: int = 0  # offline-phase updates done
    _first_eval_done: bool = False  # the evaluation after BC (and the offline phase), before any interaction
    intervened_steps: int = 0  # operator-driven steps so far (teleop takeovers)
    _intervention_buffer_full: bool = False
    operator: ScriptedOperator | None = None  # sim only: a scripted stand-in for the teleop operator
    _next_eval: int = 0
    _next_save: int = 0

    def __post_init__(self) -> None:
        self._next_eval, self._next_save = self.cfg.eval_freq, self.cfg.save_freq

    def _enter(self, phase: str) -> None:
        if not self.phases or self.phases[-1][0] != phase:
            self.phases.append((phase, self.step))
            self.logger.log("phase", self.step, {"phase": phase})

    @property
    def env_step(self) -> int:
        """Environment (simulator) steps so far: agent steps x action_repeat."""
        return self.step * self.cfg.action_repeat

    def pretrain_policy(self) -> float:
        """Phase 1: behaviour cloning on demo snippets (none without demos)."""
        if len(self.demo_buffer) == 0:
            return float("nan")
        self._enter("pretrain")
        loss = None
        for i in range(self.cfg.bc_iterations):
            batch, _ = self.demo_buffer.sample(self.cfg.batch_size)
            out = self.agent.bc_update(batch)
            loss = out["bc_loss"]
            if (i + 1) % max(1, self.cfg.bc_iterations // 5) == 0:
                self.logger.log("bc", i + 1, {k: float(v) for k, v in out.items()})
        if self.cfg.bc_sync_target:  # option; the reference's target keeps its random init
            self.agent.sync_target()
        if self.cfg.agency_transfer_steps:  # MoDem-V2 option: the BC policy keeps acting for a while
            self.agent.freeze_bc_policy()
        self._bc_done = True
        return float(loss) if loss is not None else float("nan")

    def pretrain_offline(self) -> dict[str, float]:
        """The offline phase (offline_steps > 0): updates on demos + offline episodes before any
        interaction, at the start's demo share; model-based augmentation (paper 002) in its second half,
        once the world model has learnt the data. Checkpointed every tenth, resumed where it stopped."""
        cfg, n = self.cfg, self.cfg.offline_steps
        self._enter("offline")
        every = max(1, n // 10)
        metrics: dict[str, Any] = {}
        started, first = time.perf_counter(), self._offline_next
        for i in range(self._offline_next, n):
            batch, sources = sample_mixed(self.demo_buffer, self.replay_buffer, schedules.kappa(cfg, 0),
                                          cfg.batch_size)
            metrics = self.agent.update(batch, i, aug_ratio=cfg.offline_aug_ratio if i >= n // 2 else 0.0)
            write_back_priorities(sources, metrics.pop("priorities"))
            self._offline_next = i + 1
            if (i + 1) % every == 0 and i + 1 < n:
                progress = {"updates_done": i + 1, "updates_total": n, "total_loss": float(metrics["total_loss"]),
                            "value_loss": float(metrics["value_loss"])}
                if self.heldout:  # the critic's drift over the phase: paper 002's overfitting is a trend
                    progress.update(q_vs_return(self.agent, self.heldout, cfg.discount))
                self.logger.log("offline", 0, progress)
                self.save("latest.pt")
        self.agent.last_update_step = 0  # the std schedule counts interaction, which has not begun
        out = {k: float(v) for k, v in metrics.items()}
        if n > first:  # this session's updates (a resumed phase's earlier ones are in its first session)
            out["seconds_per_update"] = (time.perf_counter() - started) / (n - first)
        if self.heldout:
            out.update(q_vs_return(self.agent, self.heldout, cfg.discount))
        self.logger.log("offline", 0, {"updates_done": n, "updates_total": n, **out})
        self.save("latest.pt")
        return out

    def update(self, num_updates: int, start: int, checkpoint_every: int = 0) -> dict[str, float]:
        """`num_updates` updates at agent steps start, start + 1, ... (the reference's step + i). With
        `checkpoint_every`, latest.pt is written that often with the updates still pending, so a long
        burst that is interrupted resumes where it was instead of from its start."""
        metrics: dict[str, Any] = {}
        report_every = num_updates // 10 if num_updates >= 200 else 0  # long bursts show progress
        for i in range(num_updates):
            kappa = schedules.kappa(self.cfg, start + i)
            batch, sources = sample_mixed(self.demo_buffer, self.replay_buffer, kappa, self.cfg.batch_size)
            metrics = self.agent.update(batch, start + i)
            write_back_priorities(sources, metrics.pop("priorities"))
            if report_every and (i + 1) % report_every == 0 and i + 1 < num_updates:
                self.logger.log("update", self.step, {"updates_done": i + 1, "updates_total": num_updates,
                                                      **burst_progress(metrics)})
            if checkpoint_every and (i + 1) % checkpoint_every == 0 and i + 1 < num_updates:
                self.save("latest.pt", pending=(start + i + 1, num_updates - i - 1))
        out = {k: float(v) for k, v in metrics.items()}  # one host sync per call, not per update
        out["kappa"] = schedules.kappa(self.cfg, start)
        return out

    def collect_episode(self) -> Episode:
        seed = train_episode_seed(self.cfg.seed, self.episodes)
        step0 = self.step  # the reference acts with the episode's first step throughout the episode
        return run_episode(self.env, lambda obs, t: self.agent.act(obs, step0, t0=t == 0), seed=seed,
                           operator=self.operator)

    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        env = self.eval_env or self.env
        results = [run_episode(env, lambda obs, t: self.agent.act(obs, self.step, eval_mode=True, t0=t == 0),
                               seed=eval_episode_seed(i)) for i in range(episodes or self.cfg.eval_episodes)]
        out = {"episode_return": float(np.mean([e.total_reward for e in results])),
               "success_rate": float(np.mean([e.succeeded for e in results]))}
        self.evaluations.append({"step": self.step, "env_step": self.env_step, **out})
        self.logger.log("eval", self.step, {"env_step": self.env_step, **out})
        self._write_eval_video(results[0])
        if self.run_dir is not None and getattr(self.logger, "path", None) is not None:
            learning_curve(self.logger.path, self.run_dir / "learning_curve.png", title=self.cfg.task)
        return out

    def _write_eval_video(self, episode: Episode) -> None:
        """MP4 of the first evaluation episode (needs the sim extra's imageio-ffmpeg and OpenCV)."""
        if self.run_dir is None:
            return
        from modem_ros.data.video import write_video

        path = self.run_dir / "videos" / f"eval_step_{self.step:08d}.mp4"
        try:
            write_video([(f"{self.cfg.task} step {self.step}", episode)], path)
        except ImportError as err:
            self.logger.log("note", self.step, {"eval_video": f"skipped, {err.name} not installed (sim extra)"})
        except Exception as err:  # noqa: BLE001
            # A video is a convenience: no encoder (imageio without its ffmpeg plugin picks another plugin
            # that raises ValueError or TypeError), a full disk or a codec error must not end a run.
            # Half a file is not left behind.
            path.unlink(missing_ok=True)
            self.logger.log("note", self.step, {"eval_video": f"not written to {path}: {str(err).splitlines()[0]}"})

    def save(self, name: str, pending: tuple[int, int] | None = None) -> Path | None:
        """The checkpoint's path, or None when it could not be written (logged; training goes on and the
        previous checkpoint stays whole). `pending`: (next update's step, updates left) of a burst."""
        if self.run_dir is None:
            return None
        extra = {"step": self.step, "episodes": self.episodes, "run_id": self.run_id,
                 "model_pretrained": self._model_pretrained, "bc_done": self._bc_done,
                 "offline_next": self._offline_next, "first_eval_done": self._first_eval_done}
        if pending is not None:
            extra["pending_updates"] = list(pending)
        try:
            return self.agent.save(self.run_dir / "checkpoints" / name, extra=extra)
        except CheckpointWriteError as err:
            self.logger.log("error", self.step, {"checkpoint": str(err)})
            return None

    def resume(self, checkpoint: Path, load_episodes: Callable[[int], list[Episode]]) -> None:
        """Continue from a checkpoint of this run; `load_episodes(n)` returns the n episodes collected
        up to it (the checkpoint says how many). A checkpoint that does not load (corrupt, truncated)
        falls back to the newest step_*.pt beside it that does, saying so."""
        state, checkpoint = self._load_for_resume(Path(checkpoint))
        self.step, self.episodes = int(state["step"]), int(state["episodes"])
        for episode in load_episodes(self.episodes):
            self.replay_buffer.add(episode)
            self.keep_interventions(episode)  # the bags keep the flags: takeovers stay oversampled
            self.intervened_steps += sum(episode.intervention)
        last_start = self.step - self.cfg.episode_length  # checkpoints without the key: fixed-length episodes
        pretrained = self.episodes > 0 and last_start >= self.cfg.seed_steps
        self._model_pretrained = bool(state.get("model_pretrained", pretrained))
        self._next_eval = (self.env_step // self.cfg.eval_freq + 1) * self.cfg.eval_freq
        self._next_save = (self.env_step // self.cfg.save_freq + 1) * self.cfg.save_freq
        self._bc_done = bool(state.get("bc_done", self.episodes > 0))
        self._offline_next = int(state.get("offline_next", self.cfg.offline_steps if self.episodes else 0))
        # checkpoints without the key: an episode follows the first evaluation, none means it is still due
        self._first_eval_done = bool(state.get("first_eval_done", self.episodes > 0))
        self.logger.log("resume", self.step, {"checkpoint": str(checkpoint), "episodes": self.episodes})
        if self._bc_done and self._offline_next < self.cfg.offline_steps:  # stopped inside the offline phase
            self.pretrain_offline()
        if self._bc_done and not self._first_eval_done:  # stopped after the offline phase, before its evaluation
            self.first_evaluation()
        if state.get("pending_updates"):  # interrupted inside the seed update burst: finish it first
            next_step, left = (int(v) for v in state["pending_updates"])
            self.logger.log("phase", self.step, {"phase": "seed_pretrain", "resumed_updates_left": left})
            self.update(left, next_step, checkpoint_every=self._burst_checkpoint_every())
            self._model_pretrained = True
            self.save("latest.pt")

    def _burst_checkpoint_every(self) -> int:
        return max(50, self.cfg.seed_steps // 10)

    def _load_for_resume(self, checkpoint: Path) -> tuple[dict[str, Any], Path]:
        candidates = [checkpoint] + sorted(checkpoint.parent.glob("step_*.pt"), reverse=True)
        errors = []
        for path in candidates:
            try:
                state = self.agent.load(path)
                int(state["step"]), int(state["episodes"])
            except Exception as err:  # noqa: BLE001 - a cut or corrupt file fails in many ways (IndexError too)
                errors.append(f"{path.name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                continue
            if path != checkpoint:
                self.logger.log("resume_fallback", int(state["step"]), {
                    "unreadable": str(checkpoint), "error": errors[0], "resumed_from": str(path)})
            return state, path
        raise ResumeError(f"no checkpoint in {checkpoint.parent} loads: " + "; ".join(errors))

    @property
    def done(self) -> bool:
        return self.step >= self.cfg.train_steps

    def begin(self) -> None:
        """Phase 1 (behaviour cloning), the offline phase if configured, and the first evaluation; a
        resumed run has them behind it."""
        if self.episodes == 0 and not self._bc_done:
            self.pretrain_policy()
            if self.cfg.offline_steps:
                self.pretrain_offline()
            self.first_evaluation()

    def first_evaluation(self) -> None:
        """The evaluation before any interaction: what BC (and the offline phase) gave. After an offline
        phase, whose checkpoint a resume would start from, it is checkpointed too, so it is neither lost
        nor repeated by a stop between it and the first episode."""
        self.evaluate()
        self._first_eval_done = True
        if self.cfg.offline_steps:
            self.save("latest.pt")

    def keep_interventions(self, episode: Episode) -> int:
        """Operator-driven runs of the episode (>= horizon steps) into the demo buffer, where kappa
        oversamples them like demos, up to intervention_capacity; returns the steps kept."""
        kept = 0
        for segment in episode.intervention_segments(self.cfg.horizon):
            try:
                self.demo_buffer.add(segment)
            except BufferFullError:
                if not self._intervention_buffer_full:
                    self._intervention_buffer_full = True
                    self.logger.log("note", self.step, {"interventions": "demo buffer full: later takeovers are "
                                                        "trained on as replay only (raise intervention_capacity)"})
                break
            kept += len(segment)
        return kept

    def after_episode(self, episode: Episode, seconds: float = 0.0) -> dict[str, Any]:
        """Take one collected episode: store it, update at the reference ratio, evaluate, checkpoint.
        The same code whether the episode came from collect_episode() or from the ROS graph."""
        cfg = self.cfg
        began = self.step  # the agent step this episode started at
        self._enter("seed" if began < cfg.seed_steps else "interactive" if self._model_pretrained
                    else "seed_pretrain")  # the first planned episode, then the seed update burst
        start = time.perf_counter()
        self.replay_buffer.add(episode)
        kept = self.keep_interventions(episode)
        self.step += len(episode)
        self.episodes += 1
        metrics: dict[str, Any] = {"phase": self.phases[-1][0], "env_step": self.env_step,
                                   "episode_return": episode.total_reward, "success": episode.succeeded}
        if any(episode.intervention) or self.intervened_steps:  # a run with takeovers: is the rate falling?
            self.intervened_steps += sum(episode.intervention)
            metrics.update(intervention_rate=episode.intervention_rate, intervention_steps_kept=kept)
        if began >= cfg.seed_steps:
            updating = time.perf_counter()
            if not self._model_pretrained:  # after the first planned episode: pretrain model, reward, critic
                metrics.update(self.update(cfg.seed_steps, began, checkpoint_every=self._burst_checkpoint_every()))
                metrics["updates"] = cfg.seed_steps
                self._model_pretrained = True
            else:
                metrics.update(self.update(len(episode), began))
                metrics["updates"] = len(episode)
            metrics["update_seconds"] = time.perf_counter() - updating  # the trainer's update rate, measured
        metrics["seconds"] = seconds + time.perf_counter() - start
        self.logger.log("train", self.step, metrics)
        if self.env_step >= self._next_eval:
            self.evaluate()
            self._next_eval = (self.env_step // cfg.eval_freq + 1) * cfg.eval_freq
        if self.env_step >= self._next_save:
            self.save(f"step_{self.step:08d}.pt")
            self._next_save = (self.env_step // cfg.save_freq + 1) * cfg.save_freq
        return metrics

    def finish(self) -> list[dict[str, float]]:
        """final.pt, and one summary line: the last evaluation and where the run's files are."""
        final = self.save("final.pt")
        last = self.evaluations[-1] if self.evaluations else {}
        summary: dict[str, Any] = {"env_step": self.env_step, "episodes": self.episodes,
                                   "final_success_rate": last.get("success_rate"),
                                   "final_return": last.get("episode_return")}
        if self.run_dir is not None:
            summary.update({"checkpoint": str(final), "curve": str(self.run_dir / "learning_curve.png"),
                            "videos": str(self.run_dir / "videos"), "metrics": str(self.run_dir / "metrics.jsonl")})
        self.logger.log("summary", self.step, summary)
        return self.evaluations

    def run(self) -> list[dict[str, float]]:
        self.begin()
        while not self.done:
            start = time.perf_counter()
            episode = self.collect_episode()
            self.after_episode(episode, time.perf_counter() - start)
        return self.finish()
