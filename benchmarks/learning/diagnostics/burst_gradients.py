"""Diagnostic behind BENCHMARKS.md's reading of why the policy saturates in the seed burst (issue 17).

Replays the first N updates of a MoDem run's seed burst from its end-of-seeding checkpoint
(step_00001000.pt: BC done, no model update yet) on the episodes the run had collected when the burst
began (the seeding episodes and the first planned one) and the same demos, once per variant (the
reference update, then each `key=value` given), from the same torch seed. Every K updates it prints:
  sat      pi_saturation: share of the policy mean's components past |0.99|
  dQ/da    pi_q_grad: mean |dQ/da| at the policy's action (what the critic tells the policy)
  Q~a      how flat the critic is in the action: std of min(Q1, Q2)(z, a) over 16 uniformly random
           actions per latent, averaged over the batch's first latents
  Q~z      the std of min(Q1, Q2)(z, pi(z)) across those latents (for scale)
  rank     the share of those random actions that the critic values below pi(z)'s action, averaged over
           the latents (1: the policy's action is the critic's best of them)
  |g_pi|   pi_grad_norm: the policy's gradient norm before clipping
  |dθ|     the size of the policy's parameter step (Adam), and cos: its cosine with the previous step
           (near 1: every step pushes the same way)

    .venv/bin/python benchmarks/learning/diagnostics/burst_gradients.py RUN_DIR [N] [K] [key=value ...]

e.g. RUN_DIR=/work/runs3x-bcreg/mw-hammer_cpu-small/modem/seed1 N=200 K=10 bc_reg_coef=1.0
"""

import dataclasses
import sys
from pathlib import Path

import torch

from modem_ros.agent import schedules
from modem_ros.agent.modem import ModemAgent
from modem_ros.config import ModemConfig, parse_overrides
from modem_ros.data.demos import episode_dirs, read_episode
from modem_ros.data.replay import EpisodeBuffer, sample_mixed, write_back_priorities


def buffers(cfg: ModemConfig, run_dir: Path, device: torch.device) -> tuple[EpisodeBuffer, EpisodeBuffer]:
    """(demos, the episodes collected before the burst: seeding + the first planned one)."""
    demos = [read_episode(p, cfg.frame_stack).episode for p in episode_dirs(Path(cfg.demo_dir))][:cfg.demos]
    n = cfg.seed_steps // cfg.episode_length + 1
    collected = [read_episode(p, cfg.frame_stack).episode for p in episode_dirs(run_dir / "episodes")[:n]]
    demo_buffer = EpisodeBuffer(cfg, sum(len(d) for d in demos), device, name="demo")
    replay = EpisodeBuffer(cfg, sum(len(e) for e in collected), device, name="replay")
    for d in demos:
        demo_buffer.add(d)
    for e in collected:
        replay.add(e)
    return demo_buffer, replay


@torch.no_grad()
def critic_shape(agent: ModemAgent, batch, samples: int = 16) -> tuple[float, float, float]:
    """(mean over latents of the std of Q over random actions, std of Q(z, pi(z)) across latents, the
    mean share of random actions valued below pi(z))."""
    z = agent.model.encode(batch.rgb[0], batch.state[0])
    a = torch.rand(samples, *z.shape[:1], agent.cfg.action_dim) * 2 - 1
    q = torch.min(*agent.model.q(z.expand(samples, -1, -1), a)).squeeze(-1)
    q_pi = torch.min(*agent.model.q(z, agent.model.pi(z))).squeeze(-1)
    return float(q.std(0).mean()), float(q_pi.std()), float((q < q_pi).float().mean())


def replay_burst(cfg: ModemConfig, run_dir: Path, updates: int, every: int) -> None:
    torch.manual_seed(0)
    agent = ModemAgent(cfg, torch.device("cpu"))
    agent.load(run_dir / "checkpoints" / "step_00001000.pt")
    demo_buffer, replay = buffers(cfg, run_dir, agent.device)
    print(f"{'update':>6} {'sat':>5} {'dQ/da':>8} {'Q~a':>8} {'Q~z':>8} {'rank':>5} {'|g_pi|':>8} {'|dθ|':>8} "
          f"{'cos':>6}")
    previous = None
    for i in range(updates):
        step = cfg.seed_steps + i  # the burst's updates run at the first planned episode's start step + i
        batch, sources = sample_mixed(demo_buffer, replay, schedules.kappa(cfg, step), cfg.batch_size)
        before = torch.cat([p.detach().flatten() for p in agent.pi_params])
        out = agent.update(batch, step)
        write_back_priorities(sources, out.pop("priorities"))
        delta = torch.cat([p.detach().flatten() for p in agent.pi_params]) - before
        cos = float("nan") if previous is None else float(torch.nn.functional.cosine_similarity(delta, previous, dim=0))
        previous = delta
        if (i + 1) % every == 0 or i == 0:
            flat_a, spread_z, rank = critic_shape(agent, batch)
            print(f"{i + 1:>6} {float(out['pi_saturation']):>5.2f} {float(out['pi_q_grad']):>8.4f} {flat_a:>8.4f} "
                  f"{spread_z:>8.4f} {rank:>5.2f} {float(out['pi_grad_norm']):>8.5f} {float(delta.norm()):>8.4f} "
                  f"{cos:>6.2f}", flush=True)


def main(run_dir: Path, updates: int, every: int, variants: list[str]) -> None:
    torch.set_num_threads(1)
    cfg = ModemConfig(**torch.load(run_dir / "checkpoints" / "step_00001000.pt", map_location="cpu",
                                   weights_only=True)["config"])
    reference = dataclasses.replace(cfg, bc_reg_coef=0.0)
    for name in ["reference update"] + variants:
        overrides = parse_overrides([name]) if "=" in name else {}
        typed = {k: type(getattr(reference, k))(v) for k, v in overrides.items()}  # numeric keys only
        print(f"\n{run_dir}: seed burst from step {cfg.seed_steps}, {name}")
        replay_burst(dataclasses.replace(reference, **typed), run_dir, updates, every)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 200,
         int(sys.argv[3]) if len(sys.argv) > 3 else 10, sys.argv[4:])
