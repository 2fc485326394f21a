"""Planning on a GPU as CUDA graphs: encoder + policy rollouts + MPPI iterations replayed as one graph.

One planned action is ~630 small kernels (five-step rollouts of 512+25 samples through five MLPs, four
times); eager PyTorch spends ~15 us of CPU per launch, so an H100 waits on Python for ~10 ms. A graph
replays the same kernels in one launch. The graph reads the model's parameters by address: in-place
updates (optimizer steps, load_state_dict) are seen by the next replay; replacing a parameter tensor
is not, so the agent never does that. Random draws inside the graph advance torch's CUDA generator on
every replay, like eager calls do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class GraphedPlan:
    """plan(rgb, state, mean0, std_bound) -> (action, mean) for one (horizon, eval_mode), captured once.

    `fn` maps the static input tensors to output tensors with no host synchronisation. Inputs are
    copied into static buffers before each replay; outputs are cloned so a later replay cannot
    overwrite what a caller kept.
    """

    def __init__(self, fn: Callable[..., tuple[torch.Tensor, ...]], *example: torch.Tensor, warmup: int = 2):
        self.inputs = [x.clone() for x in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # lazy initialisation (cuDNN/cuBLAS handles, algorithms) off-graph
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for buffer, value in zip(self.inputs, args, strict=True):
            buffer.copy_(value, non_blocking=True)
        self.graph.replay()
        return tuple(out.clone() for out in self.outputs)
