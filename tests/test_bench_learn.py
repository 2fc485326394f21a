"""`modem-ros bench learn`: methods on one budget, the JSON other tools read, resume after a stop."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from modem_ros import bench_learn
from modem_ros.agent.networks import ONEDNN_LINEAR
from modem_ros.bench_learn import method_config, run_learning_bench, train_resumable
from modem_ros.plots import eval_records
from modem_ros.runtime import cpuinfo
from modem_ros.trainer import Trainer
from tests.conftest import SMALL, sigterm_when

TINY = {k: str(v) for k, v in {**SMALL, "train_steps": 80, "seed_steps": 40, "eval_freq": 80,
                                "eval_episodes": 1, "bc_iters": 5}.items()}


def test_methods_differ_only_where_named():
    modem, tdmpc = (method_config("toy-reach", None, m, 2, TINY) for m in ("modem", "tdmpc"))
    diff = {k for k, v in modem.to_dict().items() if tdmpc.to_dict()[k] != v}
    assert diff == {"demos", "seeding", "kappa_init", "kappa_final"}
    assert tdmpc.demos == 0 and tdmpc.seeding == "uniform" and modem.seed == tdmpc.seed == 2
    # MOTO's parts, each alone and together, resolve to valid configs that differ from modem+offline where named
    data = {**TINY, "offline_dirs": "offline/a,offline/b"}
    offline = method_config("toy-reach", None, "modem+offline", 2, data).to_dict()
    for method, keys in {"modem+offline+ens": {"moto_ensemble"},
                         "modem+offline+mve": {"moto_ensemble", "moto_penalty", "moto_mve_horizon"},
                         "modem+moto": {"moto_ensemble", "moto_mve_horizon", "bc_reg_coef"},
                         "modem+moto+detached-critic": {"moto_ensemble", "moto_mve_horizon", "bc_reg_coef",
                                                        "moto_critic_detached"},
                         "modem+offline+detached-critic": {"moto_critic_detached"}}.items():
        cfg = method_config("toy-reach", None, method, 2, data).to_dict()
        assert {k for k, v in cfg.items() if offline[k] != v} == keys, method
    # the offline data goes to the offline methods only: "modem" stays MoDem from its demos
    assert offline["offline_dirs"] == "offline/a,offline/b"
    for method in ("modem", "tdmpc", "modem+conservative"):
        assert method_config("toy-reach", None, method, 2, data).offline_dirs == ""
    with pytest.raises(ValueError, match="offline_dirs"):
        method_config("toy-reach", None, "modem+moto", 2, TINY)
    # a run's offline budget goes to every method with an offline phase, and gives none to the others
    longer = {**data, "offline_steps": "4000"}
    assert method_config("toy-reach", None, "modem+offline+aug", 2, longer).offline_steps == 4000
    assert method_config("toy-reach", None, "modem", 2, longer).offline_steps == 0
    assert method_config("toy-reach", None, "modem+offline+aug", 2, longer).offline_aug_ratio == 0.5


def test_vid2act_methods_alone_get_the_teachers_and_differ_only_where_named():
    given = {**TINY, "vid2act_teachers": "t/a.pt,t/b.pt"}
    modem, whole, distill, replay = (method_config("toy-reach", None, m, 1, given) for m in
                                     ("modem", "modem+vid2act", "modem+vid2act-distill", "modem+vid2act-replay"))
    assert modem.vid2act_teachers == "" and whole.vid2act_teachers == "t/a.pt,t/b.pt"
    assert {k for k, v in modem.to_dict().items() if whole.to_dict()[k] != v} == {"vid2act_teachers"}
    assert distill.vid2act_replay_coef == 0 and distill.vid2act_distill_coef == whole.vid2act_distill_coef > 0
    assert replay.vid2act_distill_coef == 0 and replay.vid2act_replay_coef == whole.vid2act_replay_coef > 0
    with pytest.raises(ValueError, match="pretrain-sources"):
        method_config("toy-reach", None, "modem+vid2act", 1, TINY)


def test_a_stopped_run_resumes_where_it_was(tmp_path, monkeypatch):
    cfg = method_config("toy-reach", None, "modem", 1, TINY)
    original = Trainer.after_episode
    calls = {"n": 0}

    def stop_after_three(self, episode, seconds=0.0):
        calls["n"] += 1
        if calls["n"] == 3:  # a kill after the third episode was stored, before its checkpoint
            raise KeyboardInterrupt
        return original(self, episode, seconds)

    monkeypatch.setattr(Trainer, "after_episode", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        train_resumable(cfg, tmp_path / "run", io.StringIO())
    assert len(list((tmp_path / "run" / "episodes").iterdir())) == 3
    monkeypatch.setattr(Trainer, "after_episode", original)
    trainer = train_resumable(cfg, tmp_path / "run", io.StringIO())
    assert trainer.step == 80 and trainer.episodes == 4
    assert len(trainer.replay_buffer) == 80  # two from disk, two collected after the resume
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert kinds.count("resume") == 1 and kinds.count("bc") >= 1


def test_bench_writes_the_shared_keys_and_skips_complete_runs(tmp_path, monkeypatch):
    out = tmp_path / "learning" / "toy.json"
    result = run_learning_bench("toy-reach", None, [1], ["modem", "bc", "tdmpc"], TINY, out, tmp_path / "runs",
                                log=lambda s: None, log_stream=io.StringIO())
    data = json.loads(out.read_text())
    assert data["task"] == "toy-reach" and data["preset"] == "reference"
    assert {r["method"] for r in data["runs"]} == {"modem", "bc", "tdmpc"}
    for run in data["runs"]:
        assert {"method", "seed", "env_steps", "success", "return", "commit"} <= set(run)
        assert len(run["env_steps"]) == len(run["success"]) == len(run["return"])
        assert all(0.0 <= s <= 1.0 for s in run["success"])
    modem = next(r for r in data["runs"] if r["method"] == "modem")
    assert modem["env_steps"] == [0, 80, 160]  # eval_freq 80 env steps = 40 agent steps
    # every training episode counted once, by phase, against the run's own per-episode log
    logged = [json.loads(line) for line in (Path(modem["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    episodes = [r for r in logged if r["kind"] == "train"]
    counts = modem["training_episodes"]
    assert counts["all"] == [sum(bool(r["success"]) for r in episodes), len(episodes)] and len(episodes) > 1
    assert sum(n for phase, (_, n) in counts.items() if phase != "all") == len(episodes)
    assert counts["seed"][1] == sum(r["phase"] == "seed" for r in episodes) > 0
    # the host kind decides the planner's float path, so a run names its CPU, ISA and GEMM kernel
    machine = modem["machine"]
    assert machine["host_cpu"] == (cpuinfo("model name") or machine["host_cpu"]) != ""
    assert machine["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
    assert machine["planning_kernels_default"]["onednn_linear"] is ONEDNN_LINEAR
    assert next(r for r in data["runs"] if r["method"] == "bc")["env_steps"] == [0]
    assert out.with_suffix(".png").stat().st_size > 0
    assert result["config"]["tdmpc"]["demos"] == 0

    def refuse(*args, **kwargs):
        raise AssertionError("a complete run was run again")

    monkeypatch.setattr(bench_learn, "run_one", refuse)
    run_learning_bench("toy-reach", None, [1], ["modem", "bc", "tdmpc"], TINY, out, tmp_path / "runs",
                       log=lambda s: None)


def test_collect_records_a_stopped_run_as_incomplete_and_merge_joins_seeds(tmp_path, monkeypatch):
    original = Trainer.after_episode
    calls = {"n": 0}

    def stop_after_three(self, episode, seconds=0.0):
        calls["n"] += 1
        if calls["n"] == 3:  # a deadline stops the job after its first evaluation past step 0
            raise KeyboardInterrupt
        return original(self, episode, seconds)

    monkeypatch.setattr(Trainer, "after_episode", stop_after_three)
    part1, part2 = tmp_path / "a.json", tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        run_learning_bench("toy-reach", None, [1], ["modem"], TINY, part1, tmp_path / "runs", log=lambda s: None,
                           log_stream=io.StringIO())
    (interrupted,) = json.loads(part1.read_text())["runs"]  # the stop itself recorded what the run had
    assert interrupted["complete"] is False and interrupted["env_steps"] == [0, 80]
    monkeypatch.setattr(Trainer, "after_episode", original)
    collected = run_learning_bench("toy-reach", None, [1], ["modem"], TINY, part1, tmp_path / "runs",
                                   log=lambda s: None, collect_only=True)
    (stopped,) = collected["runs"]
    assert stopped["complete"] is False and stopped["env_steps"] == [0, 80]
    run_learning_bench("toy-reach", None, [2], ["modem", "bc"], TINY, part2, tmp_path / "runs", log=lambda s: None,
                       log_stream=io.StringIO())
    merged = bench_learn.merge_results([json.loads(part1.read_text()), json.loads(part2.read_text())])
    assert [(r["method"], r["seed"], r["complete"]) for r in merged["runs"]] == [
        ("bc", 2, True), ("modem", 1, False), ("modem", 2, True)]
    assert all("machine" in r and "commit" in r for r in merged["runs"])
    assert set(merged["config"]) == {"modem", "bc"}
    with pytest.raises(ValueError, match="different task"):
        bench_learn.merge_results([merged, {**merged, "task": "franka-reach"}])


@pytest.mark.parametrize("error", [
    ValueError("Could not find a backend to open `x.mp4` with iomode `w?`.\nmore"),  # imageio without ffmpeg
    TypeError("TiffWriter.write() got an unexpected keyword argument 'fps'"),  # ... and tifffile installed
])
def test_a_video_that_cannot_be_encoded_does_not_end_the_run(tmp_path, monkeypatch, error):
    import modem_ros.data.video as video

    def no_encoder(episodes, out, fps=10):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(b"half")
        raise error

    monkeypatch.setattr(video, "write_video", no_encoder)
    cfg = method_config("toy-reach", None, "modem", 1, TINY)
    trainer = train_resumable(cfg, tmp_path / "run", io.StringIO())
    assert trainer.step == 80
    notes = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    notes = [n for n in notes if n["kind"] == "note" and "eval_video" in n]
    assert notes and str(error).splitlines()[0] in notes[0]["eval_video"]
    assert not list((tmp_path / "run" / "videos").glob("*.mp4"))  # no half file left


def test_sigterm_stops_a_background_bench_like_ctrl_c(tmp_path):
    """`nohup ... &` runs ignore SIGINT, so SIGTERM is how they are stopped: one line, the partial run
    recorded, the lock released, exit 130, no traceback."""
    runs, out = tmp_path / "runs", tmp_path / "toy.json"
    run_dir = runs / "toy-reach_reference" / "modem" / "seed1"
    overrides = [f"{k}={v}" for k, v in {**TINY, "train_steps": 4000}.items()]
    code, text = sigterm_when(["bench", "learn", "--task", "toy-reach", "--methods", "modem", "--seed", "1",
                               "--runs-root", str(runs), "--out", str(out), *overrides],
                              ready=lambda: any(r["step"] > 0 for r in eval_records(run_dir / "metrics.jsonl")))
    assert code == 130, text
    assert "Traceback" not in text and "interrupted" in text and "the same command resumes it" in text
    (run,) = json.loads(out.read_text())["runs"]
    assert run["complete"] is False and run["env_steps"][:2] == [0, 80]
    assert not (run_dir / "lock").exists()


def test_training_episodes_count_a_resumed_runs_repeated_episode_once(tmp_path):
    lines = [{"kind": "train", "step": 100, "phase": "seed", "success": False},
             {"kind": "eval", "step": 100, "success_rate": 1.0},
             {"kind": "train", "step": 200, "phase": "interactive", "success": True},
             {"kind": "train", "step": 200, "phase": "interactive", "success": True}]  # logged again on resume
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"kind": "train", "step": 3'  # torn by a kill
    (tmp_path / "metrics.jsonl").write_text(text)
    assert bench_learn._training_episodes(tmp_path) == {"all": [1, 2], "seed": [0, 1], "interactive": [1, 1]}
