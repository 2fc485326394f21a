from __future__ import annotations

import numpy as np
import pytest
import torch

from modem_ros.agent import schedules
from modem_ros.data.replay import BufferFullError, EpisodeBuffer, sample_mixed, write_back_priorities
from tests.helpers import coded_episode


def _filled(cfg, name="replay", episodes=4, steps=20, reward=0.0, first_id=0):
    buffer = EpisodeBuffer(cfg, episodes * steps, "cpu", name=name)
    for i in range(episodes):
        buffer.add(coded_episode(cfg, first_id + i, steps, reward))
    return buffer


def test_snippets_are_consecutive_steps_of_one_episode(cfg):
    buffer = _filled(cfg)
    batch, idx = buffer.sample(64)
    h = cfg.horizon
    assert batch.rgb.shape == (h + 1, 64, *cfg.rgb_shape) and batch.rgb.dtype == torch.uint8
    assert batch.state.shape == (h + 1, 64, cfg.state_dim)
    assert batch.action.shape == (h, 64, cfg.action_dim) and batch.reward.shape == (h, 64, 1)
    episode, step = batch.state[..., 0], batch.state[..., 1]
    assert torch.all(episode == episode[0])  # never crosses an episode boundary
    assert torch.all(step == step[0] + torch.arange(h + 1).unsqueeze(1))
    assert torch.all(step[-1] <= 20)
    # the stacked frames rebuilt from the frame store equal the observations that were added
    for t in range(h + 1):
        for b in range(0, 64, 7):
            e, s = int(episode[t, b]), int(step[t, b])
            expected = coded_episode(cfg, e, 20).rgb[s]
            assert np.array_equal(batch.rgb[t, b].numpy(), expected)
    # the action at a snippet step is the one taken at that step of the episode
    assert torch.allclose(batch.action[..., 0], step[:-1] / 20)


def test_prioritized_sampling_and_importance_weights(cfg):
    buffer = _filled(cfg, episodes=2)
    valid = torch.nonzero(buffer.priority > 0).squeeze(1)
    priorities = torch.full((len(valid),), 1e-3)
    priorities[7] = 1e3
    hot = int(valid[7])
    buffer.update_priorities(valid, priorities)
    batch, idx = buffer.sample(200)
    assert (idx == hot).float().mean() > 0.9
    assert batch.weights.max() == 1.0
    assert torch.all(batch.weights[idx == hot] < batch.weights[idx != hot].min())


def test_invalid_snippet_starts_are_never_drawn(cfg):
    buffer = _filled(cfg, episodes=3)
    _, idx = buffer.sample(2000)
    steps = buffer.state[idx, 1]
    assert steps.max() <= 20 - cfg.horizon


def test_demo_share_matches_kappa(cfg):
    demo = _filled(cfg, name="demo", reward=1.0, first_id=100)
    replay = _filled(cfg, reward=-1.0)
    for step in (0, cfg.kappa_steps // 2, cfg.kappa_steps):
        kappa = schedules.kappa(cfg, step)
        batch, sources = sample_mixed(demo, replay, kappa, 200)
        share = (batch.reward[0, :, 0] == 1.0).float().mean().item()
        assert share == pytest.approx(int(kappa * 200) / 200)
        assert batch.state.shape[1] == 200
        # priorities go back to the buffer each row came from
        write_back_priorities(sources, torch.arange(200, dtype=torch.float32))
        _, rows, idx = sources["demo"]
        written = torch.arange(200.0)[rows] + 1e-6
        for i in range(len(idx)):  # with repeated indices, any of the values written to it may stay
            assert torch.isclose(demo.priority[idx[i]], written[idx == idx[i]]).any()


def test_only_demos_before_any_interaction(cfg):
    demo = _filled(cfg, name="demo", reward=1.0)
    empty = EpisodeBuffer(cfg, 100, "cpu")
    batch, sources = sample_mixed(demo, empty, 0.5, 32)
    assert torch.all(batch.reward == 1.0) and list(sources) == ["demo"]


def test_bad_episodes_are_refused_with_a_reason(cfg):
    buffer = EpisodeBuffer(cfg, 40, "cpu")
    short = coded_episode(cfg, 0, cfg.horizon - 1)
    with pytest.raises(ValueError, match="shorter than horizon"):
        buffer.add(short)
    broken = coded_episode(cfg, 0, 20)
    broken.state[3][0] = np.nan
    with pytest.raises(ValueError, match="non-finite values in 'state'"):
        buffer.add(broken)
    shuffled = coded_episode(cfg, 0, 20)
    shuffled.rgb[5], shuffled.rgb[6] = shuffled.rgb[6], shuffled.rgb[5]
    with pytest.raises(ValueError, match="not stacks of consecutive frames"):
        buffer.add(shuffled)
    assert buffer.num_episodes == 0  # nothing half-written
    buffer.add(coded_episode(cfg, 0, 20))
    buffer.add(coded_episode(cfg, 1, 20))
    with pytest.raises(BufferFullError, match="full"):
        buffer.add(coded_episode(cfg, 2, 20))
