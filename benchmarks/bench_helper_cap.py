"""Cost of an audit of a model holding a ``torch_ema``-style helper object (``self.ema.shadow_params``: a list of copies
of a larger network's weights, 16.9 MB, never written by the forward), against the same model without it: the wall time
of one audit, ``no_trace`` around ``input_effects`` on 64 probe rows of a 4-16-2 MLP (what the callback runs for an
``InputEffectAudit``; ``no_trace``, each estimator call and the batch-dependence check save the model's state with
``keep_attributes(helpers=True)``: the saves are counted), median over
``--repeats`` audits, in a child process per tree and repeat (one thread).

    git archive <rev> | tar -x -C /tmp/before
    .venv/bin/python benchmarks/bench_helper_cap.py --before-tree /tmp/before [--repeats 20] [--runs 3]

Without ``--before-tree`` the working tree alone. Before leftovers_s45a every save copied a helper object's tensors
whole; then those of one past ``kept_attributes.KEPT_HELPER_BYTES`` (8 MiB in all) were never copied; since mends_s45c
they are copied until a keep around a pass has seen them unwritten (the counting audit, before the timed ones), then no
longer (their versions are noted; a pass that writes into them after that is warned of, once).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import import_tree  # noqa: E402

import_tree("--child")  # the tree a child measures

from benchmarks._timing import interleaved_medians, tree_runs  # noqa: E402


def _child(repeats: int) -> None:
    import torch
    from torch import nn

    import lightning_causal
    from lightning_causal.callbacks._no_trace import no_trace
    from lightning_causal.causal import input_effects
    from lightning_causal.causal.engine import kept_attributes

    torch.set_num_threads(1)

    class ExponentialMovingAverage:  # torch_ema's layout: a list of the weights' copies
        def __init__(self, parameters: list[torch.Tensor]) -> None:
            self.decay, self.num_updates = 0.999, 0
            self.shadow_params = [p.detach().clone() for p in parameters]

    ExponentialMovingAverage.__module__ = "torch_ema"  # a user's (a third party's) class, not this script's
    big = nn.Sequential(nn.Linear(1024, 2048), nn.Linear(2048, 1024), nn.Linear(1024, 32))  # 4,230,176 weights, 16.9 MB
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    with_ema = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    with_ema.ema = ExponentialMovingAverage(list(big.parameters()))
    size = sum(t.numel() * t.element_size() for t in with_ema.ema.shadow_params)
    x = torch.randn(64, 4)
    saves = [0]
    keep = kept_attributes.keep_attributes

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        saves[0] += 1
        return keep(*args, **kwargs)

    def audit(model: nn.Module) -> None:
        with no_trace(model):
            input_effects(model, x)

    for module in list(sys.modules.values()):  # every caller's name of it
        if getattr(module, "__name__", "").startswith("lightning_causal") and getattr(module, "keep_attributes", None) is keep:
            module.keep_attributes = counted
    audit(with_ema)
    per_audit = saves[0]
    times = interleaved_medians({"without": lambda: audit(plain), "with": lambda: audit(with_ema)}, repeats)
    print(json.dumps({"tree": str(Path(lightning_causal.__file__).parents[1]), "helper_mb": size / 1e6,
                      "saves_per_audit": per_audit, **{k: v * 1e3 for k, v in times.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-tree", default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        _child(args.repeats)
        return
    trees = {"after": str(ROOT)} if args.before_tree is None else {"before": args.before_tree, "after": str(ROOT)}
    runs = tree_runs(__file__, ["--child", "--repeats", str(args.repeats)], trees, args.runs)
    for tree, results in runs.items():
        first = results[0]
        print(f"{tree}: helper {first['helper_mb']:.1f} MB, {first['saves_per_audit']} saves per audit; one audit "
              f"(median of {args.runs} runs of {args.repeats}): without it "
              f"{statistics.median(r['without'] for r in results):.2f} ms, with it "
              f"{statistics.median(r['with'] for r in results):.2f} ms")


if __name__ == "__main__":
    main()
