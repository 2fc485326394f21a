"""Episodes for buffer tests: frames whose pixel values encode (episode, step) so samples are checkable."""

from __future__ import annotations

import numpy as np

from modem_ros.config import ModemConfig
from modem_ros.data.episode import Episode


def coded_episode(cfg: ModemConfig, episode_id: int, steps: int, reward: float = 0.0) -> Episode:
    """Frame t of the episode is filled with value (episode_id * 50 + t) % 256; the state is
    [episode_id, t, ...]; the action is t / steps in every dimension; stacks repeat frame 0 at reset."""
    size, k = cfg.img_size, cfg.frame_stack

    def frame(t):
        return np.full((3, size, size), (episode_id * 50 + t) % 256, np.uint8)

    def obs(t):
        stack = [frame(max(0, t - i)) for i in reversed(range(k))]
        state = np.zeros(cfg.state_dim, np.float32)
        state[:2] = (episode_id, t)
        return {"rgb": np.concatenate(stack), "state": state}

    episode = Episode.start(obs(0))
    for t in range(1, steps + 1):
        episode.add(np.full(cfg.action_dim, (t - 1) / steps, np.float32), obs(t), reward, False)
    return episode


def assemble_in_random_order(assembler, streams: dict[str, list], rng: np.random.Generator) -> list[Episode]:
    """Feed an EpisodeAssembler its streams ("frame", "state" as (values, step label), "action", "reward",
    "success", optionally "intervention") one item at a time from a random stream, as an executor may hand
    callbacks over; the episodes it pops, in order."""
    adders = {"frame": assembler.add_frame, "state": lambda item: assembler.add_state(*item),
              "action": assembler.add_action, "reward": assembler.add_reward, "success": assembler.add_success,
              "intervention": assembler.add_intervention}
    out = []
    while any(streams.values()):
        name = rng.choice([k for k, v in streams.items() if v])
        adders[name](streams[name].pop(0))
        if (episode := assembler.pop_episode()) is not None:
            out.append(episode)
    return out
