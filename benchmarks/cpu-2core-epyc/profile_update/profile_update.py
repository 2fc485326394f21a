"""Profile ModemAgent.update at cpu-small (toy-reach, 84 px, batch 64) for the tree on PYTHONPATH."""
import sys
import time

import torch

import modem_ros
from modem_ros.agent.modem import ModemAgent
from modem_ros.bench import random_batch
from modem_ros.config import load_config

tag = sys.argv[1]
torch.manual_seed(0)
cfg = load_config("toy-reach", {"device": "cpu"}, preset="cpu-small")
agent = ModemAgent(cfg, "cpu")
batch = random_batch(cfg, torch.device("cpu"))
for i in range(5):
    agent.update(batch, step=i)
times = []
for i in range(15):
    t = time.perf_counter()
    agent.update(batch, step=5 + i)
    times.append(time.perf_counter() - t)
times.sort()
print(f"{tag} {modem_ros.__file__} median {1000 * times[len(times) // 2]:.1f} ms min {1000 * times[0]:.1f} ms",
      flush=True)
if len(sys.argv) > 2:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(10):
            agent.update(batch, step=20 + i)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=40))
