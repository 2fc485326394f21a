from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modem_ros.plots import metrics_records
from tests.conftest import SMALL, sigterm_when


def modem_ros(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "modem_ros.cli", *args], capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"modem-ros {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def small_overrides(**extra):
    return [f"{k}={v}" for k, v in {**SMALL, **extra}.items()]


def test_info_json_reports_reference_parameter_counts():
    out = json.loads(modem_ros("info", "--task", "mw-assembly", "--img-size", "224", "--json").stdout)
    assert out["parameters"]["total"] == 1_602_895 and out["parameters"]["encoder"] == 78_514
    assert out["config"]["img_size"] == 224 and out["config"]["iterations"] == 4
    assert len(out["encoder"]["convs"]) == 6 and out["encoder"]["augmentation_pad"] == 10
    out84 = json.loads(modem_ros("info", "--task", "mw-assembly", "--img-size", "84", "--json").stdout)
    assert len(out84["encoder"]["convs"]) == 4 and out84["parameters"]["encoder"] == 68_018


def test_info_table_lists_documented_fields():
    out = modem_ros("info", "--task", "adroit-door").stdout
    assert "adroit-door (suite adroit)" in out
    assert "Demo share of each batch at the start of interaction." in out
    assert "total" in out and "1,6" in out


@pytest.mark.parametrize("args, message", [
    (["info", "--task", "mw-assembly", "horizn=3"], "unknown config key 'horizn'"),
    (["info", "--task", "mw-assembly", "batch_size=big"], "'batch_size'"),
    (["info", "--task", "no-such-task"], "unknown task 'no-such-task'"),
])
def test_config_errors_exit_2_with_the_reason(args, message):
    proc = modem_ros(*args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("what", ["plan", "update"])
def test_bench_writes_json_and_prints_a_table(tmp_path, what):
    out = tmp_path / f"{what}.json"
    proc = modem_ros("bench", what, "--task", "toy-reach", "--repeats", "3", "--warmup", "1",
                     "--out", str(out), *small_overrides())
    for row in ("median / p95", "work per call", "matmul (same run)", "ratio", "options"):
        assert row in proc.stdout
    result = json.loads(out.read_text())
    assert len(result["times_ms"]) == 3 and result["median_ms"] > 0
    assert result["p95_ms"] >= result["median_ms"]
    assert result["gflop_per_call"] > 0 and result["matmul_gflops"] > 0
    assert result["fraction_of_matmul"] == pytest.approx(result["achieved_gflops"] / result["matmul_gflops"])
    # CPU times are comparable only within one vector ISA (AVX2 and AVX-512 hosts differ ~4x in matmul)
    isa = result["machine"]["cpu_isa"]
    assert isa in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX"} or isa.startswith(("AVX", "SVE"))
    assert isa in proc.stdout


def test_plan_flops_match_the_arithmetic_of_the_reference_budget(tmp_path):
    """MODEM.md: one planned action at the reference budget is ~17 GFLOP (8.4 GMAC)."""
    out = tmp_path / "plan.json"
    modem_ros("bench", "plan", "--task", "mw-assembly", "--repeats", "1", "--warmup", "0", "--out", str(out),
              "device=cpu")
    assert 16.5 < json.loads(out.read_text())["gflop_per_call"] < 18.0


def test_train_cli_runs_and_writes_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    proc = modem_ros("train", "--task", "toy-reach", "--run-dir", str(run_dir),
                     *small_overrides(train_steps=60, seed_steps=40, bc_iters=5, eval_freq=1000, eval_episodes=1))
    assert "done:" in proc.stdout and "[phase]" in proc.stdout
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "checkpoints" / "final.pt").exists()

    # the planning-budget sweep evaluates that checkpoint at each budget on the same episodes
    out = tmp_path / "budgets.json"
    proc = modem_ros("bench", "budgets", "--checkpoint", str(run_dir / "checkpoints" / "final.pt"),
                     "--budgets", "64x3,16x1", "--episodes", "2", "--out", str(out), "--device", "cpu")
    rows = json.loads(out.read_text())["rows"]
    assert [(r["num_samples"], r["iterations"]) for r in rows] == [(64, 3), (16, 1)]
    assert all(0 <= r["success_rate"] <= 1 and r["median_ms_per_action"] > 0 for r in rows)
    assert "ms/action" in proc.stdout
    # overrides change how the checkpoint runs (e.g. bf16 planning) and are recorded; a bad one is named
    modem_ros("bench", "budgets", "--checkpoint", str(run_dir / "checkpoints" / "final.pt"), "--budgets", "16x1",
              "--episodes", "1", "--out", str(out), "--device", "cpu", "amp_bf16=true")
    assert json.loads(out.read_text())["overrides"] == {"amp_bf16": "true"}
    proc = modem_ros("bench", "budgets", "--checkpoint", str(run_dir / "checkpoints" / "final.pt"),
                     "--budgets", "16x1", "--episodes", "1", "--device", "cpu", "no_such_key=1", check=False)
    assert proc.returncode != 0 and "no_such_key" in proc.stderr


def test_budget_sweep_needs_a_checkpoint():
    proc = modem_ros("bench", "budgets", check=False)
    assert proc.returncode == 2 and "--checkpoint" in proc.stderr


def test_sigterm_stops_train_with_one_line_naming_the_step(tmp_path):
    run_dir = tmp_path / "run"
    code, text = sigterm_when(["train", "--task", "toy-reach", "--run-dir", str(run_dir),
                               *small_overrides(train_steps=4000, seed_steps=40, bc_iters=5)],
                              ready=lambda: metrics_records(run_dir / "metrics.jsonl", "train"))
    assert code == 130, text
    assert "Traceback" not in text and "modem-ros train: interrupted at agent step" in text
    assert str(run_dir) in text and not (run_dir / "lock").exists()


def test_a_closed_output_pipe_stops_quietly():
    # `modem-ros demos info DIR | head`: the reader has gone before the table is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "modem_ros.cli", "info", "--task", "adroit-door"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
