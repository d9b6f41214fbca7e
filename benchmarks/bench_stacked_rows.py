"""Cost of the stacked-rows check (``causal/engine/stacked_rows.py``): each chunk of intervened rows runs its first and
last rows and an inner one (drawn from the check's own generator) alone too, to refuse a model whose batch statistic an
intervention moves across a branch's threshold.

Models trained (``fit_classifier``, ``--train-epochs``, seed 0) on scikit-learn's digits (the package's ``DigitsCNN``
and a ReLU MLP 64-128-64-10), probes from the validation digits. Each audit (``UnitImportanceAudit``,
``InputEffectAudit``, ``LayerMapAudit``; ``audit.run``) is timed with the check ("checked"), with the check of the end
rows only ("ends": the check before its inner row, :func:`ends_only`) and with it off (an outer ``checked_chunks`` block
that runs every chunk as it is: the code's path before the check), in turn within every repeat (``interleaved_times``);
the ratios are checked / off and ends / off of the medians. ``--save PATH`` writes the audits' results instead
(no timing), for a ``torch.equal`` comparison (NaN matching NaN) of two checkouts (``--compare A B``).

    python benchmarks/bench_stacked_rows.py --repeats 7 --threads 1
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import digits_bench_parser, interleaved_times  # noqa: E402
from lightning_causal.audits import InputEffectAudit, LayerMapAudit, UnitImportanceAudit  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def cases(train_epochs: int, probe_rows: int) -> list[tuple[str, object, nn.Module, Probe]]:
    x, y, xv, yv = load_digits_tensors()
    torch.manual_seed(0)
    cnn = fit_classifier(DigitsCNN(), x.view(-1, 1, 8, 8), y, train_epochs, seed=0).eval()
    net = fit_classifier(mlp(), x, y, train_epochs, seed=0).eval()
    cnn_probe = Probe(xv[:probe_rows].view(-1, 1, 8, 8), yv[:probe_rows])
    mlp_probe = Probe(xv[:probe_rows], yv[:probe_rows])
    return [
        ("unit importance, CNN conv2+fc1", UnitImportanceAudit(["conv2", "fc1"]), cnn, cnn_probe),
        ("input effects (2x2 patches), CNN", InputEffectAudit(patch_size=2), cnn, cnn_probe),
        ("layer map (2x2 patches), CNN", LayerMapAudit(patch_size=2), cnn, cnn_probe),
        ("unit importance, MLP 1+3", UnitImportanceAudit(["1", "3"]), net, mlp_probe),
        ("input effects (features), MLP", InputEffectAudit(), net, mlp_probe),
        ("layer map (features), MLP", LayerMapAudit(), net, mlp_probe),
    ]


def off():
    """The check off: an outer block whose check runs each chunk as it is."""
    from lightning_causal.causal.engine.batching import checked_chunks

    return checked_chunks(lambda fn, idx, rows_of: fn(idx))


@contextlib.contextmanager
def ends_only():
    """The check of each chunk's (or pass's) two end rows only, as it was before the inner row."""
    from lightning_causal.causal.engine import stacked_rows

    picked = stacked_rows.RowsAlone.picked_rows
    stacked_rows.RowsAlone.picked_rows = lambda self, r: [0, r - 1]
    try:
        yield
    finally:
        stacked_rows.RowsAlone.picked_rows = picked


def tensors(result) -> dict[str, object]:
    """An audit result's numbers by name: its scalars, vectors and maps as tensors, its graphs and tables as JSON text."""
    import json

    found: dict[str, object] = {f"scalars/{k}": torch.tensor(float(v)) for k, v in result.scalars.items()}
    found.update({f"vectors/{k}": v for k, v in result.vectors.items()})
    found.update({f"maps/{k}": v for k, v in result.maps.items()})
    found.update({f"graphs/{k}": json.dumps(v, sort_keys=True, default=str) for k, v in result.graphs.items()})
    found.update({f"tables/{k}": json.dumps(v, sort_keys=True, default=str) for k, v in result.tables.items()})
    return found


def equal(a: object, b: object) -> bool:
    """``torch.equal`` of tensors (NaN where both are NaN counts as equal: compared as bits), ``==`` else."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and torch.equal(torch.nan_to_num(a, 7.0), torch.nan_to_num(b, 7.0))
    return a == b


def main() -> None:
    parser = digits_bench_parser(__doc__)
    parser.add_argument("--save", help="write the audits' results to this file (no timing)")
    parser.add_argument("--compare", nargs=2, help="compare two files of --save with torch.equal")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compare:
        a, b = (torch.load(p) for p in args.compare)
        for name in a:
            same = a[name].keys() == b[name].keys() and all(equal(a[name][k], b[name][k]) for k in a[name])
            print(f"{name}: {len(a[name])} results, {'torch.equal' if same else 'DIFFER'}")
        return
    runs = cases(args.train_epochs, args.probe)
    if args.save:
        torch.save({name: tensors(audit.run(model, probe)) for name, audit, model, probe in runs}, args.save)
        return
    print(f"threads {args.threads}, probe {args.probe}, medians of {args.repeats} (checked and off in turn), "
          f"torch {torch.__version__}\n")
    print("| audit | off: wall / CPU (s) | ends: wall / CPU (s) | checked: wall / CPU (s) | ends / off (wall, CPU) | "
          "checked / off (wall, CPU) |")
    print("|---|---|---|---|---|---|")
    for name, audit, model, probe in runs:
        def run_off(audit=audit, model=model, probe=probe):
            with off():
                return audit.run(model, probe)

        def run_ends(audit=audit, model=model, probe=probe):
            with ends_only():
                return audit.run(model, probe)

        times = interleaved_times({"off": run_off, "ends": run_ends,
                                   "checked": lambda audit=audit, model=model, probe=probe: audit.run(model, probe)},
                                  args.repeats)
        (wo, co), (we, ce), (wc, cc) = times["off"], times["ends"], times["checked"]
        print(f"| {name} | {wo:.3f} / {co:.3f} | {we:.3f} / {ce:.3f} | {wc:.3f} / {cc:.3f} | {we / wo:.3f}, {ce / co:.3f} | "
              f"{wc / wo:.3f}, {cc / co:.3f} |", flush=True)


if __name__ == "__main__":
    main()
