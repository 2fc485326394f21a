"""reward_source:=classifier through the Franka bridge node: a classifier trained on labelled episodes
(the operator's per-step success marks; here synthetic frames whose 'done' is a bright corner) rewards
held-out episodes' frames as their labels say, from the newest camera frame the bridge received. The
bridge drives the Franka cell in process (simulate:=true)."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from rclpy.signals import SignalHandlerOptions  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import image_msg  # noqa: E402
from modem_ros.nodes.franka_bridge import FrankaBridge  # noqa: E402
from modem_ros.success_classifier import save_classifier, train_classifier  # noqa: E402
from tests.test_success_classifier import synthetic_episode  # noqa: E402

SIZE = 48  # the smallest agent image size is 43 (the conv encoder)


def test_the_bridges_classifier_reward_matches_the_labels_of_held_out_episodes(monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    labelled = [synthetic_episode(rng, 20, int(rng.integers(5, 15)) if i % 3 else None, SIZE)
                 for i in range(12)]
    net, report = train_classifier(labelled, steps=150, target_fpr=0.05, seed=0)
    path = save_classifier(net, report, SIZE, "franka-reach", tmp_path / "clf.pt")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    context = rclpy.Context()
    params = {"task": "franka-reach", "config_overrides": f"img_size={SIZE}", "simulate": "true",
              "reward_source": "classifier", "classifier": str(path), "watch_observation": "false",
              "sim_camera_size": "[64,48]"}
    rclpy.init(context=context, args=["--ros-args", *[a for k, v in params.items() for a in ("-p", f"{k}:={v}")]],
               signal_handler_options=SignalHandlerOptions.NO)
    bridge = FrankaBridge(context=context)
    try:
        verdicts, direct, labels = [], [], []
        for episode in [synthetic_episode(rng, 20, d, SIZE) for d in (4, 12, None, None)]:  # never seen
            for t, success in enumerate(episode.success):
                frame = np.ascontiguousarray(episode.rgb[t + 1][-3:].transpose(1, 2, 0))  # after action t
                bridge.on_image(image_msg(frame, bridge.get_clock().now().to_msg(), topics.CAMERA_FRAME))
                verdicts.append(bridge.success_now())
                direct.append(bridge.detector(frame)[0])
                labels.append(success)
        verdicts, labels = np.array(verdicts), np.array(labels)
        # the reward is the classifier's verdict on the newest frame the bridge received, exactly
        assert verdicts.tolist() == direct
        # and it matches the labels of episodes it never saw (its report's held-out rates flatter it: the
        # threshold was chosen on them, README)
        print(f"report fpr {report.heldout_fpr:.3f} tpr {report.heldout_tpr:.3f}; through the bridge on new "
              f"episodes: fpr {verdicts[~labels].mean():.3f} tpr {verdicts[labels].mean():.3f}")
        assert (verdicts == labels).mean() >= 0.85 and verdicts[labels].mean() >= 0.9, (verdicts, labels)
    finally:
        bridge.destroy_node()
        rclpy.shutdown(context=context)
