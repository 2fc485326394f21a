"""Shared fixtures: a small but complete MoDem configuration on the built-in toy-reach task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modem_ros.config import ModemConfig, load_config
from modem_ros.runtime import keep_freed_memory

keep_freed_memory()

# Small widths and budgets so the whole suite runs on a 2-core CPU; the math is the reference's.
SMALL = {"img_size": 48, "mlp_dim": 64, "enc_dim": 32, "latent_dim": 16, "num_channels": 8,
         "batch_size": 16, "num_samples": 64, "num_elites": 8, "iterations": 3, "episode_length": 20,
         "seed_steps": 40, "train_steps": 80, "bc_iters": 20, "eval_episodes": 2, "eval_freq": 40,
         "save_freq": 40, "demos": 3, "device": "cpu"}


def small_config(**overrides) -> ModemConfig:
    return load_config("toy-reach", {**SMALL, **overrides})


@pytest.fixture
def cfg() -> ModemConfig:
    return small_config()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
