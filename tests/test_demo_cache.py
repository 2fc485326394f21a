"""The demo cache filled on first use is shared by runs that start at once (bench_learn_parallel.sh)."""

import multiprocessing as mp
import os

from modem_ros.config import load_config
from modem_ros.data.demos import episode_dirs
from modem_ros.run import ensure_demos
from tests.conftest import SMALL


def _fill(data_root: str, barrier, results) -> None:
    os.environ["MODEM_ROS_DATA"] = data_root
    cfg = load_config("toy-reach", {**SMALL, "demos": 3})
    barrier.wait()  # both processes ask for the demos at the same moment
    try:
        results.put(str(ensure_demos(cfg, log=lambda s: None)))
    except Exception as err:  # noqa: BLE001 - the parent asserts on it
        results.put(f"error: {err!r}")


def test_runs_starting_together_share_one_generation_of_the_demos(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_fill, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    answers = [results.get(timeout=5) for _ in procs]
    assert all(not a.startswith("error") for a in answers), answers
    assert len(set(answers)) == 1
    assert len(episode_dirs(answers[0])) == 3  # generated once, not once per run
