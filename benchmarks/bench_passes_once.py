"""Passes an audit ran twice (leftovers_s35b): the model rows and the CPU time of three audits, an earlier tree's
code beside today's.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_passes_once.py --before-tree DIR --now-tree DIR [--repeats 5]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_passes_once.py --toggle [--repeats 11]

Cases (random weights, seed 0; one torch thread):
``padding``: ``InputEffectAudit(ace_values=None)`` of a 1-D conv net on 32 zero-padded waveforms ``[32, 1, 16000]``
with a ``lengths`` forward argument (each read of the padding scans the waveforms' steps); ``sobol``:
``SobolAudit(n=256, target=0)`` of a Gaussian policy (an MLP 16-64-4 returning a ``Normal``) read through
``output=lambda out: out.mean``; ``curves``: ``CaptumBaseline(("Saliency", "InputXGradient"))`` of a small video
model (``Conv3d`` on clips ``[16, 3, 8, 32, 32]``, 4x8x8 patches), whose deletion and insertion curves ran a clean
pass of the probe each. Each measurement runs in a child process importing ``lightning_causal`` from one tree
(``_timing.tree_runs``: the trees in turn within every repeat); the child times the audit's ``run`` once after a
warm-up (CPU seconds) and counts the rows through the model (a forward hook), the padding reads
(``ablation.padding_positions``) and a digest of the result (equal: the same numbers in both trees).
``--toggle``: the ``curves`` case in one process, today's code with and without the curves' own clean passes, in turn
(the trees' CPU times differ by more than the change on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import import_tree  # noqa: E402

import_tree("--child")

import torch  # noqa: E402
from torch import nn  # noqa: E402

CASES = ("padding", "sobol", "curves")


class _Waves(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv1d(1, 8, 64, stride=32), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).relu().mean(-1))


class _Policy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.sd = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 4)), nn.Parameter(torch.zeros(4))

    def forward(self, x: torch.Tensor):
        from torch.distributions import Normal

        return Normal(self.body(x), self.sd.exp())


class _Video(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv3d(3, 8, 3, stride=2), nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).relu().mean((2, 3, 4)))


def _case(name: str):
    """``(model, audit, probe)`` of a case."""
    from lightning_causal import CaptumBaseline, InputEffectAudit, SobolAudit
    from lightning_causal.audits import Probe

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if name == "padding":
        n, steps = 32, 16_000
        lengths = torch.randint(steps // 2, steps + 1, (n,), generator=gen)
        x = torch.randn(n, 1, steps, generator=gen)
        x[torch.arange(steps).expand(n, 1, steps) >= lengths.view(n, 1, 1)] = 0
        return _Waves().eval(), InputEffectAudit(ace_values=None, patch_size=2000), Probe(x, additional_forward_args=(lengths,))
    if name == "sobol":
        return _Policy().eval(), SobolAudit(n=256, n_bootstrap=8, target=0, output=lambda out: out.mean), \
            Probe(torch.randn(64, 16, generator=gen))
    mask = torch.arange(2 * 4 * 4).view(1, 1, 2, 4, 4).repeat_interleave(4, 2).repeat_interleave(8, 3).repeat_interleave(8, 4)
    return _Video().eval(), CaptumBaseline(("Saliency", "InputXGradient"), feature_mask=mask), \
        Probe(torch.randn(16, 3, 8, 32, 32, generator=gen))


def _digest(result) -> list[float]:
    values = [float(v) for v in result.scalars.values()]
    values += [float(t.double().sum()) for t in result.vectors.values()]
    return [round(v, 9) for v in values]


def _child(name: str) -> None:
    import warnings

    import lightning_causal
    from lightning_causal.causal.engine import ablation

    torch.set_num_threads(1)
    model, audit, probe = _case(name)
    rows, reads = [0], [0]
    model.register_forward_hook(lambda _m, inputs, _o: rows.__setitem__(0, rows[0] + inputs[0].shape[0]))
    scan = ablation.padding_positions

    def counted(*args, **kwargs):
        reads[0] += 1
        return scan(*args, **kwargs)

    ablation.padding_positions = counted
    for module in list(sys.modules.values()):  # the audits import it by name
        if getattr(module, "padding_positions", None) is scan:
            module.padding_positions = counted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit.run(model, probe)  # warm-up
        rows[0] = reads[0] = 0
        t0 = time.process_time()
        result = audit.run(model, probe)
        cpu = time.process_time() - t0
    print(json.dumps({"tree": str(Path(lightning_causal.__file__).parents[1]), "cpu": cpu, "rows": rows[0],
                      "reads": reads[0], "digest": _digest(result)}))


def _toggle(repeats: int) -> None:
    """The ``curves`` case in this process, today's code with the curves' own clean pass put back (``clean=`` dropped)
    and without, in turn within every repeat after a warm-up round: median CPU seconds of each."""
    import warnings

    import lightning_causal.audits.captum_metrics as captum_metrics

    torch.set_num_threads(1)
    model, audit, probe = _case("curves")
    real = captum_metrics.M.perturbation_curve

    def own_clean_pass(*args, clean=None, **kwargs):
        return real(*args, **kwargs)

    times: dict[str, list[float]] = {"own clean pass per curve": [], "the audit's clean pass": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(repeats + 1):
            for name, curve in zip(times, (own_clean_pass, real)):
                captum_metrics.M.perturbation_curve = curve
                t0 = time.process_time()
                audit.run(model, probe)
                if r:
                    times[name].append(time.process_time() - t0)
    captum_metrics.M.perturbation_curve = real
    print(" | ".join(f"{name}: {statistics.median(t):.3f} s" for name, t in times.items()))


def main() -> None:
    from benchmarks._timing import tree_runs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-tree")
    parser.add_argument("--now-tree")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--toggle", action="store_true", help="the curves case in one process (see _toggle)")
    args = parser.parse_args()
    if args.toggle:
        _toggle(args.repeats)
        return
    if not (args.before_tree and args.now_tree):
        parser.error("--before-tree and --now-tree are needed (or --toggle)")
    trees = {"before": args.before_tree, "now": args.now_tree}
    print("| case | model rows before | now | padding reads before | now | CPU s before | now | equal |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        runs = tree_runs(__file__, ["--child", name], trees, args.repeats)
        b, w = runs["before"], runs["now"]
        cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
        print(f"| {name} | {b[0]['rows']} | {w[0]['rows']} | {b[0]['reads']} | {w[0]['reads']} | {cpu['before']:.3f} | "
              f"{cpu['now']:.3f} | {b[0]['digest'] == w[0]['digest']} |")


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child(sys.argv[sys.argv.index("--child") + 1])
    else:
        main()
