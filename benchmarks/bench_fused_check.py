"""What building :class:`~lightning_causal.repair.paired_rows.PairedPasses` costs at every fused step of a
``CausalRepairModule`` (``fuse_forward=True``): the fused check builds one each step (it walks the model's modules
and buffers: training-mode BatchNorm layers, the buffers a pass may write, composable-checkpoint segments) before its
one pass of the task's rows and their counterfactuals.

    .venv/bin/python benchmarks/bench_fused_check.py [--repeats 7] [--calls 200] [--threads 1]
    .venv/bin/python benchmarks/bench_fused_check.py --drawing [--repeats 7] [--calls 200] [--threads 1]

Two models, each in training mode with a ``CounterfactualFairnessTerm(AttributeFlip(column))`` on one binary column,
batches of 64 rows: an MLP 32 -> 64 -> 64 -> 2 (a few modules) and a 12-layer ``nn.TransformerEncoder`` (d_model 64,
4 heads, dropout 0: it draws nothing, so every step is fused; about 110 modules) over 16 positions of 32 features, given flat ``[N, 512]``.
Side by side in one process, called in turn within every repeat (:func:`_timing.interleaved_times`): ``step``, a
fused ``training_step`` (the module's ``log`` stubbed out); ``PairedPasses``, the constructor alone, as the step calls
it. The table gives the median CPU time per call and the constructor's share of the step.

``--drawing``: the same two models with dropout 0.1 (they draw at every training pass, so every step runs unfused and
reads again whether the model still draws, :func:`~lightning_causal.repair.paired_rows.drawing`, built before the
task's pass and called after it): ``step``, an unfused ``training_step`` (forward only, as above); ``forward``, one
training-mode pass of the model on the batch; ``drawing``, ``drawing(model, device)()`` as the step calls it (it walks
the modules for the generators they hold and compares the global generators' states). Median CPU time per call, and
the check's share of the step and of one forward.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import interleaved_times  # noqa: E402


def _cases(dropout: float = 0.0):
    import torch
    from torch import nn

    from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(32, 64)
            layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=dropout, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)
            self.head = nn.Linear(64, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(self.inp(x.view(-1, 16, 32)))[:, 0])  # flat rows [N, 512]: column 3 flipped

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    mlp = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    if dropout:
        mlp.insert(2, nn.Dropout(dropout))
    x_mlp = torch.randn(64, 32, generator=g)
    x_mlp[:, 3] = (x_mlp[:, 3] > 0).float()
    x_seq = torch.randn(64, 16 * 32, generator=g)
    x_seq[:, 3] = (x_seq[:, 3] > 0).float()
    y = torch.arange(64) % 2
    out = {}
    for name, net, x in (("MLP", mlp, x_mlp), ("TransformerEncoder x12", Encoder(), x_seq)):
        module = CausalRepairModule(net.train(), [CounterfactualFairnessTerm(AttributeFlip(3))]).train()
        module.log = module.log_dict = lambda *a, **k: None
        out[name] = (module, x, y)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--drawing", action="store_true", help="the drawing check of a model that draws, per step")
    args = parser.parse_args()
    import torch

    if args.drawing:
        _drawing(args)
        return

    from lightning_causal.repair.paired_rows import PairedPasses, pass_records

    torch.set_num_threads(args.threads)
    print("| model | modules | fused step (ms CPU) | PairedPasses(...) (ms CPU) | share of the step |")
    print("|---|---:|---:|---:|---:|")
    for name, (module, x, y) in _cases().items():
        module.training_step((x, y), 0)  # the first step finds the model carries no state: fused from the next
        module.training_step((x, y), 1)
        written = pass_records(module)[1]
        fused = module.__dict__["_draws"].get(module.model) is False or module.model not in module.__dict__["_draws"]
        assert fused, "the step is not fused"

        def step(module=module, x=x, y=y) -> None:
            with torch.no_grad():
                for _ in range(max(1, args.calls // 20)):
                    module.training_step((x, y), 2)

        def build(module=module, x=x, written=written) -> None:
            for _ in range(max(1, args.calls // 20)):
                PairedPasses(module.model, x.device, written)

        times = interleaved_times({"step": step, "build": build}, args.repeats)
        per = max(1, args.calls // 20)
        s, b = times["step"][1] / per * 1e3, times["build"][1] / per * 1e3
        print(f"| {name} | {sum(1 for _ in module.model.modules())} | {s:.3f} | {b:.4f} | {100 * b / s:.2f}% |")


def _drawing(args: argparse.Namespace) -> None:
    import torch

    from lightning_causal.repair.paired_rows import drawing

    torch.set_num_threads(args.threads)
    print("| model | modules | unfused step (ms CPU) | forward (ms CPU) | `drawing(...)()` (ms CPU) | share of the step "
          "| of a forward |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    per = max(1, args.calls // 20)
    for name, (module, x, y) in _cases(dropout=0.1).items():
        module.training_step((x, y), 0)  # the first step sees the task's pass draw: unfused, read again every step
        module.training_step((x, y), 1)
        assert module.__dict__["_draws"].get(module.model) is True, "the model is not recorded as drawing"

        def step(module=module, x=x, y=y) -> None:
            with torch.no_grad():
                for _ in range(per):
                    module.training_step((x, y), 2)

        def forward(module=module, x=x) -> None:
            with torch.no_grad():
                for _ in range(per):
                    module.model(x)

        def check(module=module, x=x) -> None:
            for _ in range(per):
                drawing(module.model, x.device)()

        times = interleaved_times({"step": step, "forward": forward, "drawing": check}, args.repeats)
        s, f, d = (times[k][1] / per * 1e3 for k in ("step", "forward", "drawing"))
        print(f"| {name} | {sum(1 for _ in module.model.modules())} | {s:.3f} | {f:.3f} | {d:.4f} | {100 * d / s:.2f}% "
              f"| {100 * d / f:.1f}% |")


if __name__ == "__main__":
    main()
