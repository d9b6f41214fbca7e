"""Step time of ``CausalRepairModule`` on a model with a MoCo-sized queue fed by a gathered batch, with the memory-bank
rule of a git revision (``--before``) and today's, side by side in one process.

    .venv/bin/python benchmarks/bench_memory_bank.py --before HEAD~1 [--steps 6] [--queue 65536] [--threads 1]

The model: a linear encoder 64 -> 128 and a head over ``[q, mean(q @ queue)]``, its queue ``[128, K]`` written in
its training-mode forward (keys of a fixed key encoder: MoCo's is momentum-updated, not trained) with ``2N`` rows
a step (``queue[:, ptr:ptr + 2N] = k.T`` of a batch of ``N = 32`` and the other rank's, as MoCo's queue fed by
``concat_all_gather``), one ``CounterfactualFairnessTerm``. Each setting runs a
fresh model: one step (the first, where the carried state is read), then ``--steps`` timed steps (forward, backward,
SGD), the settings in turn within every repeat (one thread: the process's CPU time). ``--before``'s rule
(``repair/carried_state.py`` at that revision, ``task_pass_state`` put in the module's place; 8dc4e905's) missed a bank written
with more rows than the batch: fused, the counterfactual rows went into the queue. The table gives the median ms a
step and whether the queue then holds what plain training writes there.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import module_at  # noqa: E402
from lightning_causal import CausalRepairModule  # noqa: E402
from lightning_causal.causal import AttributeFlip  # noqa: E402
from lightning_causal.repair import CounterfactualFairnessTerm  # noqa: E402
from lightning_causal.repair import module as repair_module  # noqa: E402

D_IN, DIM, N = 64, 128, 32


class _Queue(nn.Module):
    """A MoCo-like classifier reading a queue ``[dim, K]`` of past keys, written ``2N`` rows a step."""

    def __init__(self, k: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc, self.head = nn.Linear(D_IN, DIM), nn.Linear(DIM + 1, 2)
        self.register_buffer("queue", nn.functional.normalize(torch.randn(DIM, k), dim=0))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("key_enc", torch.randn(D_IN, DIM) / D_IN ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = nn.functional.normalize(self.enc(x), dim=1)
        out = self.head(torch.cat([q, (q @ self.queue.clone()).mean(1, keepdim=True)], 1))  # MoCo: l_neg on a clone
        if self.training:
            with torch.no_grad():
                k = nn.functional.normalize(x @ self.key_enc, dim=1)  # the key encoder's (no gradient: momentum-updated in MoCo)
                keys = torch.cat([k, k.flip(0)])  # this rank's keys and the other rank's (concat_all_gather)
                cols = (self.ptr + torch.arange(len(keys))) % self.queue.shape[1]
                self.queue[:, cols] = keys.T
                self.ptr.copy_((self.ptr + len(keys)) % self.queue.shape[1])
        return out


def _batches(steps: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    data = torch.randn((steps + 1) * N, D_IN, generator=g)
    data[:, 0] = (data[:, 0] > 0).float()  # the flipped binary column
    return list(data.split(N))


def _fit(k: int, steps: int, rule, fuse: bool) -> tuple[float, bool]:
    """ms a step (CPU) over ``steps`` steps after the first, and whether the queue holds what plain training writes."""
    batches = _batches(steps)
    plain = _Queue(k).train()
    with torch.no_grad():
        for x in batches:
            plain(x)
    model = _Queue(k)
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=fuse)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    saved = repair_module.task_pass_state
    repair_module.task_pass_state = rule
    try:
        for step, x in enumerate(batches):
            if step == 1:
                start = time.process_time()
            opt.zero_grad()
            out = repair.training_step((x, torch.zeros(N, dtype=torch.long)), step)
            (out["loss"] if isinstance(out, dict) else out).backward()
            opt.step()
        ms = (time.process_time() - start) / steps * 1e3
    finally:
        repair_module.task_pass_state = saved
    return ms, bool(torch.equal(model.queue, plain.queue))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision whose repair/carried_state.py rule to compare")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting and repeat")
    parser.add_argument("--queue", type=int, default=65536, help="the queue's length K")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the settings, run in turn")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    old = module_at(args.before, "lightning_causal/repair/carried_state.py").task_pass_state
    settings = {"before, fuse_forward=True": (old, True), "before, fuse_forward=False": (old, False),
                "now, fuse_forward=True": (saved := repair_module.task_pass_state, True), "now, fuse_forward=False": (saved, False)}
    times: dict[str, list[float]] = {name: [] for name in settings}
    right: dict[str, bool] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):
            for name, (rule, fuse) in settings.items():
                ms, right[name] = _fit(args.queue, args.steps, rule, fuse)
                times[name].append(ms)
    print(f"queue [{DIM}, {args.queue}], batch {N}, {2 * N} keys a step, {args.threads} thread(s), "
          f"{args.steps} steps x {args.repeats} repeats")
    print("| setting | ms a step (CPU, median) | queue as plain training fills it |")
    print("|---|---|---|")
    for name in settings:
        print(f"| {name} | {sorted(times[name])[len(times[name]) // 2]:.1f} | {'yes' if right[name] else 'no'} |")


if __name__ == "__main__":
    main()
