"""Cost of the reentrant-checkpoint walk in the searches that take an input gradient at every step: the region
search of ``BackdoorSuppressionTerm(trigger=None)`` (``repair.backdoor_triggers.search_regions``) and
``counterfactual_explanation`` (its search and polish), before (``leaf_grad`` walks the output's whole graph at every
step to learn whether a reentrant ``torch.utils.checkpoint`` is in it) and now (``engine.leaf_gradients.LeafGradients``
walks at a search's first step only).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_leaf_grads.py [--repeats 9] [--before 1762ad39]

The code before the change (``backdoor_triggers.py``, ``counterfactuals.py``, ``counterfactual_refine.py`` and
``leaf_gradients.py`` at ``--before``) is loaded beside today's (``benchmarks._timing.module_at``) and the two are
called in turn (``interleaved_times``), one thread, median process time of ``--repeats``; both give the same result
(checked, to the bit). Models, none checkpointed (the common case): an MLP of 450 modules (a Flatten, 225 Linear layers of width 16, 224 ReLUs:
1,127 graph nodes) and a Python-unrolled recurrence (a gated loop of 1,000 steps over [N, 8]: 3,012
tiny nodes).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import interleaved_times, module_at  # noqa: E402
from lightning_causal.causal.engine.forward import Forward  # noqa: E402
from lightning_causal.causal.structure import counterfactuals  # noqa: E402
from lightning_causal.repair import backdoor_triggers  # noqa: E402


class Unrolled(nn.Module):
    """A recurrence written out in Python: every step a few elementwise operations on ``[N, 8]``."""

    def __init__(self, steps: int = 1000) -> None:
        super().__init__()
        self.inp, self.out = nn.Linear(64, 8), nn.Linear(8, 3)
        self.gate = nn.Parameter(torch.full((8,), 0.9))
        self.steps = steps

    def forward(self, x):
        z = self.inp(x.flatten(1))
        h = torch.zeros_like(z)
        for _ in range(self.steps):
            h = torch.tanh(self.gate * h + z)
        return self.out(h)


def mlp() -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, 16), nn.ReLU()]
    for _ in range(223):
        layers += [nn.Linear(16, 16), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(16, 3))


def before_modules(rev: str):
    """``search_regions`` and the counterfactuals module as they were at ``rev``, with that revision's leaf_grad."""
    lg = module_at(rev, "lightning_causal/causal/engine/leaf_gradients.py")
    refine = module_at(rev, "lightning_causal/causal/structure/counterfactual_refine.py")
    bt = module_at(rev, "lightning_causal/repair/backdoor_triggers.py")
    cf = module_at(rev, "lightning_causal/causal/structure/counterfactuals.py")
    refine.leaf_grad = bt.leaf_grad = cf.leaf_grad = lg.leaf_grad
    cf.polish = refine.polish
    return bt.search_regions, cf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--before", default="1762ad39", help="the revision of the code before the change")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    old_search, old_cf = before_modules(args.before)
    rows = []
    for name, model in (("MLP, 450 modules", mlp()), ("unrolled loop, 1,000 steps", Unrolled())):
        torch.manual_seed(0)
        model = model.eval()
        x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        region = torch.zeros(1, 8, 8)
        region[:, :2, :2] = 1
        targets = torch.arange(32) % 3

        def search(fn, model=model, x=x, region=region, targets=targets):
            return fn(Forward(model), x, [region], targets, (0.0, 1.0), 5, torch.Generator().manual_seed(0))

        target = (model(x[:8]).argmax(1) + 1) % 3

        def explain(mod, model=model, x=x, target=target):  # the module's own CounterfactualSettings
            settings = mod.CounterfactualSettings(steps=100, polish=5)
            return mod.counterfactual_explanation(model, x[:8], target, settings).counterfactuals

        assert torch.equal(search(old_search), search(backdoor_triggers.search_regions))
        assert torch.equal(explain(old_cf), explain(counterfactuals))
        for what, fn, old, new in (("region search (5 steps, 32 rows)", search, old_search, backdoor_triggers.search_regions),
                                   ("counterfactual search (100 steps, polish 5, 8 rows)", explain, old_cf, counterfactuals)):
            t = interleaved_times({"before": lambda fn=fn, old=old: fn(old), "now": lambda fn=fn, new=new: fn(new)},
                                  args.repeats)
            rows.append((name, what, t["before"][1], t["now"][1]))
    print("| model | call | before | now | now / before |\n|---|---|---|---|---|")
    for name, what, b, n in rows:
        print(f"| {name} | {what} | {1e3 * b:.1f} ms | {1e3 * n:.1f} ms | {n / b:.2f} |")
    print(f"process time, median of {args.repeats}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")


if __name__ == "__main__":
    main()
