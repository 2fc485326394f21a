"""Diagnostic behind BENCHMARKS.md's `modem+moto` section (issue 20): where value expansion's latents and
targets sit against the real ones, per saved checkpoint of a MOTO run. On the run's last N training
episodes: real latents z_t = encode(o_t); the world model's H-step predictions from z_t along the taken
actions; value expansion's M imagined steps from those predictions (moto.value_expansion_targets, as the
update draws them; skipped for a run without MOTO). Prints latent norms (online and target encoder),
the prediction error against the online encoder's z_{t+H}, the critic at real (z, a) and at the imagined
latents, and the value-expansion targets (a Meta-World return lies in [-1 / (1 - discount), 0]).

    .venv/bin/python benchmarks/learning/diagnostics/moto_latents.py RUN_SEED_DIR [EPISODES [EPISODE_DIR]]

EPISODE_DIR: episodes to use instead of the run's own (a run with train_steps=0 has none: its offline data);
checkpoints: every step_*.pt, else final.pt.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.moto import value_expansion_targets
from modem_ros.config import ModemConfig
from modem_ros.data.demos import episode_dirs, read_episode


@torch.no_grad()
def report(agent: ModemAgent, episodes: list) -> dict[str, tuple[float, float, float]]:
    """Per quantity: (mean, min, max) over every step of the episodes."""
    cfg, model, horizon = agent.cfg, agent.model, agent.cfg.horizon
    rows = {k: [] for k in ("z", "z_target", "z_pred", "pred_err", "q_real", "z_mve", "q_mve", "y_mve")}
    for e in episodes:
        rgb, state = torch.from_numpy(np.stack(e.rgb)), torch.from_numpy(np.stack(e.state))
        action = torch.from_numpy(np.stack(e.action))
        z = model.encode(rgb, state)
        starts = z[: len(action) - horizon]
        pred = starts
        for k in range(horizon):
            pred, _ = model.next(pred, action[k: k + len(starts)])
        rows["z"].append(z.norm(dim=-1))
        rows["z_target"].append(agent.target.encode(rgb, state).norm(dim=-1))
        rows["q_real"].append(torch.min(*model.q(z[:-1], action)).squeeze(-1))
        rows["z_pred"].append(pred.norm(dim=-1))
        rows["pred_err"].append((pred - z[horizon: horizon + len(starts)]).norm(dim=-1))
        if agent.moto is None or cfg.moto_mve_horizon == 0:  # no value expansion: the same latents, to compare
            continue
        latents, _, targets = value_expansion_targets(
            agent.moto.ensemble, model, agent.target, pred, cfg.moto_mve_horizon, cfg.discount, cfg.moto_penalty,
            cfg.min_std)
        rows["z_mve"].append(latents[-1].norm(dim=-1))
        rows["q_mve"].append(torch.min(*model.q(latents[-1], model.pi(latents[-1]))).squeeze(-1))
        rows["y_mve"].append(targets[0].squeeze(-1))
    out = {}
    for k, v in rows.items():
        if not v:
            continue
        v = torch.cat(v)
        out[k] = (float(v.mean()), float(v.min()), float(v.max()))
    return out


def main(seed_dir: Path, last: int, episode_dir: Path | None = None) -> None:
    torch.set_num_threads(1)
    cfg = ModemConfig(**torch.load(seed_dir / "checkpoints" / "final.pt", map_location="cpu", weights_only=True)[
        "config"])
    episodes = [read_episode(p, cfg.frame_stack).episode
                for p in episode_dirs(episode_dir or seed_dir / "episodes")[-last:]]
    print(f"{seed_dir}: the last {last} episodes of {episode_dir or 'its training'}; mean [min, max]; returns lie in "
          f"[{-1 / (1 - cfg.discount):.0f}, 0]")
    for ckpt in sorted((seed_dir / "checkpoints").glob("step_*.pt")) or [seed_dir / "checkpoints" / "final.pt"]:
        agent = ModemAgent(cfg, torch.device("cpu"))
        agent.load(ckpt)
        r = report(agent, episodes)
        print(f"{ckpt.stem}: " + "; ".join(
            f"{k} {m:.3g} [{lo:.3g}, {hi:.3g}]" for k, (m, lo, hi) in r.items()), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5,
         Path(sys.argv[3]) if len(sys.argv) > 3 else None)
