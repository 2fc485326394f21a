"""Does LeRobot itself read what `modem-ros demos export --format lerobot` writes? Run with a LeRobot
install's Python (LeRobot pins torch below ours, so it lives in its own venv; scripts/check_lerobot.sh
makes one and runs both halves):

    .venv/bin/python scripts/check_lerobot.py reference DEMO_DIR EXPORT_DIR REF.npz   # our side
    lerobot-venv/bin/python scripts/check_lerobot.py check EXPORT_DIR REF.npz OUT.json  # LeRobot's side

`reference` reads our source episode bags (not the export) into arrays. `check` loads the export with
LeRobot's LeRobotDataset, compares every frame's action, state, reward, indices and decoded image with
the source, then builds LeRobot's ACT policy from the dataset's metadata and stats and runs training
steps on its DataLoader (the loss must be finite and fall). Writes what it measured to OUT.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def reference(demo_dir: str, export_dir: str, out: str) -> None:
    from modem_ros.data.demos import load_demo_dir
    from modem_ros.data.lerobot import export_lerobot

    bags, bad = load_demo_dir(demo_dir, frame_stack=1)
    assert not bad, bad
    export_lerobot(demo_dir, export_dir)
    arrays = {}
    for i, bag in enumerate(bags):  # T steps export T frames: observation t with the action taken from it
        ep = bag.episode.arrays()
        arrays[f"rgb{i}"] = ep["rgb"][:-1]
        arrays[f"state{i}"] = ep["state"][:-1]
        arrays[f"action{i}"] = ep["action"]
        arrays[f"reward{i}"] = ep["reward"]
    np.savez_compressed(out, episodes=len(bags), **arrays)
    print(f"reference of {len(bags)} episodes -> {out}")


def check(export_dir: str, ref_path: str, out: str) -> None:
    import lerobot
    import torch
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.factory import make_policy, make_pre_post_processors

    ref = np.load(ref_path)
    ds = LeRobotDataset("local/modem-export", root=export_dir, video_backend="pyav")
    camera = ds.meta.camera_keys[0]
    total = sum(len(ref[f"action{i}"]) for i in range(int(ref["episodes"])))
    assert len(ds) == total and ds.num_episodes == int(ref["episodes"]), (len(ds), total, ds.num_episodes)
    worst_pixel, index = 0.0, 0
    for ep in range(int(ref["episodes"])):
        for t in range(len(ref[f"action{ep}"])):
            item = ds[index]
            assert int(item["episode_index"]) == ep and int(item["frame_index"]) == t, (index, ep, t)
            assert np.array_equal(item["action"].numpy(), ref[f"action{ep}"][t]), ("action", ep, t)
            assert np.array_equal(item["observation.state"].numpy(), ref[f"state{ep}"][t]), ("state", ep, t)
            assert np.isclose(float(item["next.reward"]), float(ref[f"reward{ep}"][t])), ("reward", ep, t)
            image = item[camera].numpy()  # float CHW in [0, 1], decoded from the H.264 video
            source = ref[f"rgb{ep}"][t].astype(np.float32) / 255.0
            assert image.shape == source.shape, (image.shape, source.shape)
            worst_pixel = max(worst_pixel, float(np.abs(image - source).mean()))
            index += 1
    assert worst_pixel < 0.03, f"decoded frames differ from the source by {worst_pixel:.4f} (mean abs, [0, 1])"

    # LeRobot's own policy on it, as lerobot-train assembles one: ACT from the dataset's features and stats
    cfg = ACTConfig(chunk_size=5, n_action_steps=5, pretrained_backbone_weights=None, dim_model=64,
                    n_heads=2, dim_feedforward=128, n_encoder_layers=1, n_decoder_layers=1, use_vae=False,
                    device="cpu")
    train_ds = LeRobotDataset("local/modem-export", root=export_dir, video_backend="pyav",
                              delta_timestamps=resolve_delta_timestamps(cfg, ds.meta))
    torch.manual_seed(0)
    policy = make_policy(cfg, ds_meta=train_ds.meta)
    preprocessor, _ = make_pre_post_processors(policy_cfg=cfg, dataset_stats=train_ds.meta.stats)
    optim = torch.optim.Adam(policy.parameters(), lr=3e-4)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=8, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    batch = preprocessor(next(iter(loader)))

    def eval_loss() -> float:  # without dropout, so before and after compare
        policy.eval()
        with torch.no_grad():
            value = float(policy.forward(batch)[0])
        policy.train()
        return value

    before = eval_loss()
    for _ in range(30):  # one batch, many steps: a policy that can read the data fits it
        loss, _ = policy.forward(batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
    after = eval_loss()
    assert np.isfinite(after) and after < before, (before, after)
    losses = [before, after]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"commit": commit, "lerobot": lerobot.__version__, "torch": torch.__version__, "frames": len(ds),
              "episodes": ds.num_episodes, "fps": ds.fps, "camera": camera,
              "worst_episode_frame_mean_abs_pixel_error": worst_pixel,
              "act_losses_first_last": [losses[0], losses[-1]]}
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    {"reference": reference, "check": check}[sys.argv[1]](*sys.argv[2:])
