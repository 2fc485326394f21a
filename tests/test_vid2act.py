"""Vid2Act (issue 21, paper 003): teachers refused when they cannot serve the target, similarity weights
that find the teacher whose dynamics match the target's, action replay toward the weighted teachers'
actions that fades, the agent's update with the transfer, and resumable teacher pretraining."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.networks import WorldModel
from modem_ros.agent.vid2act import Teacher, TeacherError, Vid2Act, pretrain_teacher
from modem_ros.cli import main
from modem_ros.data.demos import write_episode
from modem_ros.data.replay import EpisodeBuffer
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.trainer import burst_progress, run_episode
from tests.conftest import SMALL, random_episode_batch, small_config


def random_batch(cfg, bsz=32):
    h = cfg.horizon
    return (torch.randint(0, 255, (h + 1, bsz, 3 * cfg.frame_stack, cfg.img_size, cfg.img_size), dtype=torch.uint8),
            torch.randn(h + 1, bsz, cfg.state_dim), torch.rand(h, bsz, cfg.action_dim) * 2 - 1)


def save_teacher(path, cfg, source: str, **extra):
    torch.save({"config": cfg.to_dict(), "model": WorldModel(cfg).state_dict(), "source": source, **extra}, path)
    return path


def hand_weights(transfer: Vid2Act, preds: list[torch.Tensor], student: torch.Tensor) -> torch.Tensor:
    """The teachers' weights [K, N] from their next-latent predictions, computed here from the parts: the
    head scores each teacher's own latent (shared map) or its mapped prediction (per_teacher)."""
    scored = torch.stack(preds) if transfer.shared else \
        torch.stack([p(x) for p, x in zip(transfer.project, preds, strict=True)])
    head_in = torch.cat([scored, student.expand(len(preds), -1, -1)], -1)
    return torch.softmax(transfer.importance(head_in).squeeze(-1), 0)


def test_teachers_that_cannot_serve_the_target_are_refused_naming_why(tmp_path):
    cfg = small_config()
    other = small_config(action_dim=3)
    with pytest.raises(TeacherError, match="action_dim"):
        Teacher.load(save_teacher(tmp_path / "a.pt", other, "franka-push"), cfg, torch.device("cpu"))
    torch.save({"config": cfg.to_dict(), "model": WorldModel(cfg).state_dict()}, tmp_path / "b.pt")
    with pytest.raises(TeacherError, match="pretrain-sources"):
        Teacher.load(tmp_path / "b.pt", cfg, torch.device("cpu"))
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherError, match="c.pt"):
        Teacher.load(tmp_path / "c.pt", cfg, torch.device("cpu"))
    teacher = Teacher.load(save_teacher(tmp_path / "d.pt", cfg, "franka-push"), cfg, torch.device("cpu"))
    assert teacher.name == "franka-push" and not any(p.requires_grad for p in teacher.model.parameters())


def test_similarity_weights_find_the_teacher_whose_dynamics_match_the_target():
    """The student's own world model as one teacher, an untrained one as the other: trained on the
    distillation loss alone, the weights move to the matching teacher (first away from it: its projection
    starts random too), per sample. lr 3e-3 so that 400 steps suffice."""
    cfg = small_config(lr=3e-3)
    student = WorldModel(cfg).requires_grad_(False)
    teachers = [Teacher("random", WorldModel(cfg).requires_grad_(False)),
                Teacher("same", copy.deepcopy(student))]
    transfer = Vid2Act(cfg, teachers, torch.device("cpu"))
    rgb, state, action = random_batch(cfg)
    with torch.no_grad():
        z = student.encode(rgb[:cfg.horizon].flatten(0, 1), state[:cfg.horizon].flatten(0, 1))
        predicted = student.dynamics(torch.cat([z, action.flatten(0, 1)], -1)).view(cfg.horizon, 32, -1)
    weights = []
    for _ in range(400):
        loss, terms = transfer.distill_loss(rgb, state, action, predicted)
        loss.backward()
        transfer.step()
        weights.append(float(terms["vid2act_w/same"]))
    assert weights[0] < 0.6 and weights[-1] > 0.9, weights[::40]
    assert float(terms["vid2act_w/same"]) + float(terms["vid2act_w/random"]) == pytest.approx(1.0)


@pytest.mark.parametrize("projection", ["shared", "per_teacher"])
def test_action_replay_guides_toward_the_weighted_teachers_actions_and_fades(projection):
    cfg = small_config(vid2act_replay_coef=2.0, vid2act_replay_steps=100, vid2act_projection=projection)
    teachers = [Teacher(name, WorldModel(cfg).requires_grad_(False)) for name in ("a", "b")]
    transfer = Vid2Act(cfg, teachers, torch.device("cpu"))
    rgb, state, action = random_batch(cfg, bsz=8)
    predicted = torch.randn(cfg.horizon, 8, cfg.latent_dim)
    transfer.distill_loss(rgb, state, action, predicted)
    guide, coef = transfer.guidance(0)
    assert coef == 2.0 and guide.shape == action.shape
    with torch.no_grad():  # recompute: the weights of the same inputs times each teacher's policy action
        obs = rgb[:cfg.horizon].flatten(0, 1), state[:cfg.horizon].flatten(0, 1)
        zs = [t.model.encode(*obs) for t in teachers]
        w = hand_weights(transfer, [t.model.dynamics(torch.cat([z, action.flatten(0, 1)], -1))
                                    for t, z in zip(teachers, zs, strict=True)], predicted.flatten(0, 1))
        want = sum(w[k, :, None] * torch.tanh(t.model.pi_net(zs[k])) for k, t in enumerate(teachers))
    torch.testing.assert_close(guide, want.view_as(guide))
    assert transfer.guidance(50)[1] == pytest.approx(1.0)
    assert transfer.guidance(100) == (None, 0.0)  # faded: the target's own data has taken over


def test_the_agent_update_with_vid2act_distils_replays_and_checkpoints(tmp_path):
    cfg = small_config(vid2act_replay_coef=1.0, vid2act_replay_steps=1000)
    torch.manual_seed(0)
    agent = ModemAgent(cfg)
    teacher = Teacher("src", WorldModel(cfg).requires_grad_(False))
    transfer = Vid2Act(cfg, [teacher], agent.device)
    agent.extensions.append(transfer)
    batch = random_episode_batch(cfg)
    before = [p.clone() for p in transfer.distiller.parameters()]
    out = agent.update(batch, step=0)
    assert out["vid2act_w/src"] == pytest.approx(1.0) and out["vid2act_distill_loss"] > 0
    progress = burst_progress(out)  # a long burst's progress record shows the weights too, not only its end
    assert progress["vid2act_w/src"] == pytest.approx(1.0) and set(progress) == {
        "total_loss", "pi_saturation", "pi_q_grad", "vid2act_w/src"}
    assert all(not torch.equal(a, b) for a, b in zip(before, transfer.distiller.parameters(), strict=True))
    # the replay term is in the policy loss: the same update from the same state, replaying or faded
    def pi_loss_at(step: int) -> float:
        probe = ModemAgent(cfg)
        probe.extensions.append(Vid2Act(cfg, [teacher], agent.device))
        probe.load_state_dict(agent.state_dict())  # the learned projections and importance head too
        torch.manual_seed(1)
        return float(probe.update(batch, step=step)["pi_loss"])

    assert pi_loss_at(0) > pi_loss_at(1000) + 1e-4  # + a positive pull toward the teachers' actions
    # a run's checkpoint keeps the learned part, and refuses another run's sources
    path = agent.save(tmp_path / "a.pt")
    other = ModemAgent(cfg)
    other.extensions.append(Vid2Act(cfg, [Teacher("elsewhere", WorldModel(cfg))], agent.device))
    with pytest.raises(ValueError, match="vid2act sources"):
        other.load(path)


def test_teachers_pretrain_resumably_and_the_cli_names_what_cannot_be_a_source(tmp_path, capsys):
    cfg = small_config(batch_size=8)
    env = PointReachEnv(img_size=cfg.img_size, episode_length=cfg.episode_length)
    rng = np.random.default_rng(0)
    for i in range(3):
        episode = run_episode(env, lambda o, t: rng.uniform(-1, 1, 2), seed=i)
        write_episode(episode, tmp_path / "src" / f"episode_{i:06d}", {"task": "toy-reach"})
        write_episode(episode, tmp_path / "arm" / f"episode_{i:06d}", {"task": "franka-reach"})
    agent = ModemAgent(cfg)
    buffer = EpisodeBuffer(cfg, 3 * cfg.episode_length, "cpu")
    lines: list[str] = []
    out = pretrain_teacher(agent, buffer_with(buffer, env), 4, tmp_path / "t.pt", "toy-reach", lines.append, 2)
    assert torch.load(out, weights_only=True)["teacher_updates"] == 4
    pretrain_teacher(ModemAgent(cfg), buffer, 6, out, "toy-reach", lines.append, 2)
    assert any("resuming at update 4 of 6" in line for line in lines)
    assert torch.load(out, weights_only=True)["teacher_updates"] == 6
    with pytest.raises(TeacherError, match="not 'franka-push'"):
        pretrain_teacher(ModemAgent(cfg), buffer, 8, out, "franka-push", lines.append)

    overrides = [f"{k}={v}" for k, v in {**SMALL, "batch_size": 8}.items()]
    assert main(["pretrain-sources", str(tmp_path / "arm"), "--out", str(tmp_path / "t"), *overrides]) == 2
    assert "differ in" in capsys.readouterr().err  # franka-reach episodes cannot teach toy-reach
    assert main(["pretrain-sources", str(tmp_path / "src"), "--out", str(tmp_path / "t"), "--updates", "3",
                 *overrides]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"vid2act_teachers={tmp_path / 't' / 'toy-reach.pt'}"
    # training with it: the run logs its sources and each update the weight of each
    run_cfg = small_config(vid2act_teachers=str(tmp_path / "t" / "toy-reach.pt"), eval_episodes=1)
    trainer = build_trainer(run_cfg, tmp_path / "run", log_stream=io.StringIO())
    trainer.begin()
    trainer.update(2, start=0)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "vid2act" and r["sources"] == ["toy-reach"] for r in records)
    transfers = [e for e in trainer.agent.extensions if isinstance(e, Vid2Act)]
    assert len(transfers) == 1 and transfers[0].names == ["toy-reach"]


def buffer_with(buffer: EpisodeBuffer, env) -> EpisodeBuffer:
    rng = np.random.default_rng(1)
    for seed in range(2):
        buffer.add(run_episode(env, lambda o, t: rng.uniform(-1, 1, 2), seed=seed))
    return buffer


def test_a_teacher_of_other_sizes_serves_through_its_map_and_guides_only_what_it_maps(tmp_path):
    """Target: 6-d state, 3-d actions. 'point': a toy-reach teacher (4-d state, 2-d actions) whose source
    dimensions are the target's state [5, 0, 1, 2] and actions [2, 0]; 'same': a teacher of the target's
    sizes. Target action dimension 1 is the 'same' teacher's alone; 0 and 2 are weighted over both."""
    target, source = small_config(state_dim=6, action_dim=3), small_config()
    cpu = torch.device("cpu")
    with pytest.raises(TeacherError, match="state_dim.*--state-map"):
        Teacher.load(save_teacher(tmp_path / "bare.pt", source, "toy-reach"), target, cpu)
    with pytest.raises(TeacherError, match=r"0\.\.5"):  # a map into dimensions the target does not have
        Teacher.load(save_teacher(tmp_path / "bad.pt", source, "toy-reach", state_map=[5, 0, 1, 9],
                                  action_map=[2, 0]), target, cpu)
    point = Teacher.load(save_teacher(tmp_path / "point.pt", source, "toy-reach", state_map=[5, 0, 1, 2],
                                      action_map=[2, 0]), target, cpu)
    same = Teacher("same", WorldModel(target).requires_grad_(False))
    transfer = Vid2Act(target, [point, same], cpu)
    rgb, state, action = random_batch(target, bsz=8)
    predicted = torch.randn(target.horizon, 8, target.latent_dim)
    transfer.distill_loss(rgb, state, action, predicted)
    guide, coef = transfer.anchor(0)  # every dimension has a teacher: no mask
    with torch.no_grad():
        obs_rgb, obs_state, act = rgb[:target.horizon].flatten(0, 1), state[:target.horizon].flatten(0, 1), \
            action.flatten(0, 1)
        z_point = point.model.encode(obs_rgb, obs_state[:, [5, 0, 1, 2]])
        z_same = same.model.encode(obs_rgb, obs_state)
        w = hand_weights(transfer, [point.model.dynamics(torch.cat([z_point, act[:, [2, 0]]], -1)),
                                    same.model.dynamics(torch.cat([z_same, act], -1))], predicted.flatten(0, 1))
        a_point, a_same = torch.tanh(point.model.pi_net(z_point)), torch.tanh(same.model.pi_net(z_same))
    want = torch.stack([w[0] * a_point[:, 1] + w[1] * a_same[:, 0], a_same[:, 1],
                        w[0] * a_point[:, 0] + w[1] * a_same[:, 2]], -1)
    torch.testing.assert_close(guide, want.view_as(guide))
    alone = Vid2Act(target, [point], cpu)  # with the mapped teacher alone, dimension 1 gets no pull
    alone.distill_loss(rgb, state, action, predicted)
    guide, coef, cover = alone.anchor(0)
    assert cover.tolist() == [1.0, 0.0, 1.0] and torch.all(guide[..., 1] == 0)
    torch.testing.assert_close(guide[..., 2], a_point[:, 0].view(target.horizon, 8))


def test_a_masked_anchor_does_not_pull_the_dimensions_it_does_not_cover():
    cfg = small_config(action_dim=3, state_dim=4)
    torch.manual_seed(0)
    agent = ModemAgent(cfg)
    zs = torch.randn(cfg.horizon + 1, 8, cfg.latent_dim)
    target = torch.rand(cfg.horizon, 8, 3) * 2 - 1
    elsewhere = target.clone()
    elsewhere[..., 1] = -target[..., 1]  # differs only in the uncovered dimension
    cover = torch.tensor([1.0, 0.0, 1.0])

    def policy_after(anchor) -> list[torch.Tensor]:
        probe = ModemAgent(cfg)
        probe.load_state_dict(agent.state_dict())
        torch.manual_seed(1)
        probe._update_pi(zs, [anchor])
        return [p.detach().clone() for p in probe.model.pi_net.parameters()]

    same = policy_after((target, 10.0, cover))
    assert all(torch.equal(a, b) for a, b in zip(same, policy_after((elsewhere, 10.0, cover)), strict=True))
    unmasked = policy_after((elsewhere, 10.0))  # without the mask the uncovered dimension pulls too
    assert not all(torch.equal(a, b) for a, b in zip(same, unmasked, strict=True))


def test_pretrain_sources_makes_a_mapped_teacher_for_a_target_of_other_sizes(tmp_path, capsys):
    env = PointReachEnv(img_size=SMALL["img_size"], episode_length=SMALL["episode_length"])
    rng = np.random.default_rng(0)
    for i in range(2):
        episode = run_episode(env, lambda o, t: rng.uniform(-1, 1, 2), seed=i)
        write_episode(episode, tmp_path / "src" / f"episode_{i:06d}", {"task": "toy-reach"})
    overrides = [f"{k}={v}" for k, v in {**SMALL, "batch_size": 8}.items()]
    args = ["pretrain-sources", str(tmp_path / "src"), "--task", "franka-reach", "--out", str(tmp_path / "t"),
            "--updates", "2", *overrides]
    assert main(args) == 2  # toy-reach (4-d state, 2-d actions) cannot read a Franka cell's vectors as they are
    assert "state_dim" in capsys.readouterr().err
    assert main([*args, "--state-map", "0,1,2,3", "--action-map", "0,1,0"]) == 2  # 3 entries for 2 dimensions
    assert "action map" in capsys.readouterr().err
    assert main([*args, "--state-map", "0,1,2,3", "--action-map", "0,1"]) == 0
    saved = torch.load(tmp_path / "t" / "toy-reach.pt", weights_only=True)
    assert saved["state_map"] == [0, 1, 2, 3] and saved["action_map"] == [0, 1]
    from modem_ros.config import load_config
    teacher = Teacher.load(tmp_path / "t" / "toy-reach.pt", load_config("franka-reach", SMALL), torch.device("cpu"))
    assert teacher.space_map.action == (0, 1)
    assert main([*args, "--state-map", "3,2,1,0", "--action-map", "0,1"]) == 2  # rerun with another map
    assert "was made with" in capsys.readouterr().err


def test_one_shared_map_needs_teachers_of_one_latent_size():
    cfg = small_config()
    teachers = [Teacher("a", WorldModel(cfg)), Teacher("b", WorldModel(small_config(latent_dim=24)))]
    with pytest.raises(TeacherError, match="latent sizes differ.*'b': 24"):
        Vid2Act(cfg, teachers, torch.device("cpu"))
    per_teacher = Vid2Act(small_config(vid2act_projection="per_teacher"), teachers, torch.device("cpu"))
    assert [m.in_features for m in per_teacher.project] == [cfg.latent_dim, 24]
