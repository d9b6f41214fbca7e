"""What an audit epoch's TensorBoard content costs beside the audits, and `figures_every_n_audits`.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py [--epochs 10] [--every 5] [--repeats 2]

The set-up of the newuser18 long-run trial: a DigitsCNN on the digits (batch 32), seven audits every epoch
(input effects, unit importance, causal graph, layer map, Sobol', Captum IG + Saliency, counterfactuals),
`probe_size=48`, a `TensorBoardLogger`. Fits with `figures_every_n_audits=1` (the default) and `--every`
alternate in one process; per fit: the audits' seconds (`causal/audit_seconds`, summed), the drawing's
seconds (`AuditRun._render`, timed: wall and process), the event file's and the JSON reports' bytes per audit epoch, and the
fit's wall time. One thread, so that the drawing and the audits are timed on the same core.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --reuse-ab [--repeats 7]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --rows-ab [--epochs 6] [--repeats 2]

One audit epoch's figures (the same seven audits, run once on a DigitsCNN trained for 600 samples) drawn through
the writer's path (``render_figures``, every figure drawn to its image as ``TensorBoardLogger`` gets it) with the
image rows of one layout redrawing one figure (``map_figures(reuse=True)``, the callback's path since drawing_s24)
and with a figure built per row (``reuse=False``, as before), alternating in one process
(``_timing.interleaved_times``): median wall and process seconds per audit epoch; then the same for the
``frames`` kind's figures of a video probe (maps of three methods, random values). ``--rows-ab``: the fits above
with ``figures_every_n_audits=1``, the image rows reused and not, alternating.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --kept-ab [--repeats 7]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --kept-ab --fits [--epochs 6] [--repeats 2]

drawing_s25's changes against the code before them, alternating in one process: a figure drawn again on the Agg
canvas it kept (``figure_image``; before, a new canvas per draw), the counterfactual grid kept by the renderer from
one audit to the next (``counterfactual_figure(kept=)``; before, built every audit), an audit's image rows kept from
one audit to the next (``map_figures(kept=)``; before, within an audit) and a sequence's samples of one channel
redrawing one figure per layout (``sequence_maps(reuse=True)``; before, a figure each). Without ``--fits``: the
seven audits' epoch above drawn by two renderers, each kept over the repeats as a fit's renderer is over its epochs
(medians, wall and process seconds), then the counterfactual grid alone, then a univariate signal under the
sequence kind (a figure per sample and map: now redrawn per layout; random maps); with ``--fits``: fits of
``figures_every_n_audits=1`` as ``--rows-ab``'s, the old and new code alternating.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --pixels /tmp/after.npz
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_drawing.py --compare /tmp/before.npz /tmp/after.npz

No timing: every kind of kept figure (``reporting/kept_figures.py``: heatmap rows, video frames, a signal's bars and
step outlines, the counterfactual grid) drawn over two or three audit epochs through the writer's path, and each kind's
figures of their own, saved as images; run in the trees before and after a change of the kept figures and compared
pixel for pixel.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal import CausalAuditCallback  # noqa: E402
from lightning_causal.audits import (  # noqa: E402
    CaptumBaseline,
    CausalGraphAudit,
    CounterfactualAudit,
    InputEffectAudit,
    LayerMapAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.callbacks import _audit_run  # noqa: E402
from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors  # noqa: E402

DRAWN: list[float] = []  # the seconds of each _render call of the running fit
DRAWN_CPU: list[float] = []  # its process seconds (one thread: the drawing's, whatever else runs on the machine)


def _timed_render(render):
    def timed(self, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return render(self, *args, **kwargs)
        finally:
            DRAWN.append(time.perf_counter() - t0)
            DRAWN_CPU.append(time.process_time() - c0)
    return timed


def fit(every: int, epochs: int, root: Path) -> dict[str, float]:
    pl.seed_everything(0, verbose=False)
    xt, yt, xv, yv = load_digits_tensors()
    audits = [InputEffectAudit(patch_size=2, top_k=5), UnitImportanceAudit(["model.conv1", "model.conv2"], top_k=5),
              CausalGraphAudit(["model.conv1", "model.conv2"]), LayerMapAudit(patch_size=2),
              SobolAudit(n=256, n_bootstrap=20, patch_size=4), CaptumBaseline(methods=["IntegratedGradients", "Saliency"]),
              CounterfactualAudit(max_samples=4)]
    callback = CausalAuditCallback(audits, probe_size=48, figures_every_n_audits=every)
    seconds: list[float] = []

    class Seconds(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seconds.append(float(callback.last_scalars.get("causal/audit_seconds", 0.0)))

    trainer = pl.Trainer(max_epochs=epochs, logger=TensorBoardLogger(root, name="", version=""), callbacks=[callback, Seconds()],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         accelerator="cpu", devices=1, log_every_n_steps=10)
    DRAWN.clear()
    DRAWN_CPU.clear()
    t0 = time.perf_counter()
    trainer.fit(LightningClassifier(DigitsCNN(), lr=2e-3), DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True),
                DataLoader(TensorDataset(xv, yv), batch_size=256))
    wall = time.perf_counter() - t0
    events = sum(p.stat().st_size for p in root.glob("events.out.tfevents*"))
    reports = sum(p.stat().st_size for p in (root / "causal_audit").glob("*.json"))
    n = len(callback.audited_epochs)
    return {"audits": sum(seconds), "drawing": sum(DRAWN), "drawing_cpu": sum(DRAWN_CPU), "events_kb": events / n / 1e3, "report_kb": reports / n / 1e3,
            "wall": wall, "audited": n}


@contextlib.contextmanager
def before_s25():
    """The drawing as it was before drawing_s25: a new Agg canvas per draw, the counterfactual grid built every audit,
    an audit's image rows sharing figures within the audit only, a figure built per sample of a sequence."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal.reporting import tensorboard

    def new_canvas(fig):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    own_image, own_grid, own_maps = tensorboard.figure_image, tensorboard._counterfactual_figure, tensorboard.map_figures
    tensorboard.figure_image = new_canvas
    tensorboard._counterfactual_figure = lambda *args, kept=None: own_grid(*args[:5])
    from lightning_causal.reporting.figure_kinds import infer_kind

    def rows_within_an_audit(data, kind=None, reuse=False, kept=None):  # the image and frames kinds' only (drawing_s24)
        return own_maps(data, kind, reuse=reuse and (kind or infer_kind(data.inputs, data.meta)) in ("image", "frames"))

    tensorboard.map_figures = rows_within_an_audit
    try:
        yield
    finally:
        tensorboard.figure_image, tensorboard._counterfactual_figure, tensorboard.map_figures = own_image, own_grid, own_maps


def epoch_results():
    """The seven audits' results of one epoch on a DigitsCNN trained for 600 samples, and the probe."""
    from lightning_causal.audits import Probe

    torch.manual_seed(0)
    xt, yt, xv, yv = load_digits_tensors()
    model = LightningClassifier(DigitsCNN(), lr=2e-3)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for i in range(0, 600, 32):
        loss = torch.nn.functional.cross_entropy(model(xt[i:i + 32]), yt[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    audits = [InputEffectAudit(patch_size=2, top_k=5), UnitImportanceAudit(["model.conv1", "model.conv2"], top_k=5),
              CausalGraphAudit(["model.conv1", "model.conv2"]), LayerMapAudit(patch_size=2),
              SobolAudit(n=256, n_bootstrap=20, patch_size=4), CaptumBaseline(methods=["IntegratedGradients", "Saliency"]),
              CounterfactualAudit(max_samples=4)]
    probe = Probe(xv[:48], labels=yv[:48])
    return [a.run(model, probe) for a in audits], probe


class Writer:  # what the writer's path does with a figure: draw it to an image (TensorBoardRenderer._figure)
    images = 0

    def add_image(self, *args, **kwargs):
        Writer.images += 1

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def kept_ab(repeats: int) -> None:
    """One epoch's figures by renderers kept over the repeats, before drawing_s25 and now, alternating (see the docstring)."""
    from benchmarks._timing import interleaved_times
    from lightning_causal.audits.base import AuditResult
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    results, probe = epoch_results()
    grid = [r for r in results if r.audit == "counterfactual"]
    # a univariate signal [48, 1, 64] under the sequence kind, maps of CaptumBaseline's form (causal, IG, Saliency;
    # random): four samples, a figure per map
    g = torch.Generator().manual_seed(0)
    signal = torch.rand(48, 1, 64, generator=g)
    maps = {name: torch.randn(48, 1, 64, generator=g) for name in ("causal", "IntegratedGradients", "Saliency")}
    maps["Saliency"] = maps["Saliency"].abs()
    sequence = [AuditResult("captum_baseline", maps=maps, meta={"targets": [k % 3 for k in range(48)],
                                                                  "methods": ["IntegratedGradients", "Saliency"]})]
    for name, drawn, x, labels in (("the seven audits' epoch", results, probe.first, probe.labels),
                                   ("the counterfactual grid alone", grid, probe.first, probe.labels),
                                   ("a signal [48, 1, 64], three maps (12 figures)", sequence, signal, None)):
        old, new = TensorBoardRenderer(), TensorBoardRenderer()

        def before(_r=old, _d=drawn, _x=x, _l=labels):
            with before_s25():
                _r.render_figures(Writer(), _d, _x, step=0, probe_labels=_l)

        times = interleaved_times({"before": before, "now": lambda _r=new, _d=drawn, _x=x, _l=labels: _r.render_figures(
            Writer(), _d, _x, step=0, probe_labels=_l)}, repeats)
        (bw, bc), (nw, nc) = times["before"], times["now"]
        print(f"| {name} | {bw:.3f} / {bc:.3f} | {nw:.3f} / {nc:.3f} | {nw / bw:.2f} / {nc / bc:.2f} |")


def reuse_ab(repeats: int) -> None:
    """Draw one audit epoch's figures with and without the reused image rows, alternating (see the docstring)."""
    from benchmarks._timing import interleaved_times
    from lightning_causal.reporting import tensorboard
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    results, probe = epoch_results()
    own = tensorboard.map_figures

    def draw(reuse: bool):
        tensorboard.map_figures = lambda data, kind=None, reuse=False, kept=None, _r=reuse: own(data, kind, reuse=_r and reuse, kept=kept)
        try:
            TensorBoardRenderer().render_figures(Writer(), results, probe.first, step=0, probe_labels=probe.labels)
        finally:
            tensorboard.map_figures = own

    times = interleaved_times({"a figure per row (before)": lambda: draw(False), "rows redraw one figure": lambda: draw(True)}, repeats)
    Writer.images = 0
    draw(True)
    print(f"torch {torch.__version__}, 1 thread, one audit epoch of the seven audits: {Writer.images} figures, "
          f"medians of {repeats} (interleaved)\n")
    print("| image rows | wall (s) | process (s) |\n|---|---|---|")
    for name, (wall, cpu) in times.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    # a video probe under figure_kind="frames": a CaptumBaseline-like result (causal, IG, Saliency: a figure per map)
    g = torch.Generator().manual_seed(0)
    video = torch.rand(4, 3, 16, 32, 32, generator=g)
    maps = {name: torch.randn(4, 3, 16, 32, 32, generator=g) for name in ("causal", "IntegratedGradients", "Saliency")}
    maps["Saliency"] = maps["Saliency"].abs()
    from lightning_causal.audits.base import AuditResult

    clip = [AuditResult("captum_baseline", maps=maps, meta={"targets": [0, 1, 0, 1]})]

    def frames(reuse: bool):
        tensorboard.map_figures = lambda data, kind=None, reuse=False, kept=None, _r=reuse: own(data, kind, reuse=_r and reuse, kept=kept)
        try:
            TensorBoardRenderer(figure_kind="frames").render_figures(Writer(), clip, video, step=0)
        finally:
            tensorboard.map_figures = own

    times = interleaved_times({"a figure per sample (before)": lambda: frames(False), "samples redraw one figure": lambda: frames(True)},
                              repeats)
    print("\nA video probe [4, 3, 16, 32, 32], figure_kind='frames', three maps (12 figures of 8 frames):\n")
    print("| frames figures | wall (s) | process (s) |\n|---|---|---|")
    for name, (wall, cpu) in times.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


def kept_pixels(path: str) -> None:
    """Every kind of kept figure (reporting/kept_figures.py) drawn over two or three audit epochs through the writer's
    path, and each kind's figures of their own (``figures()``), saved as images by ``<case>|<tag>|<step>`` in ``path``
    (``.npz``): run it in two trees and ``--compare`` the files (a change of the kept figures keeps the pixels)."""
    import numpy as np

    from lightning_causal.audits.base import AuditResult
    from lightning_causal.reporting.counterfactual_figures import counterfactual_figure
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image

    out: dict[str, np.ndarray] = {}

    class Images(Writer):
        def __init__(self, case: str):
            self.case = case

        def add_image(self, tag, img, step, **kwargs):
            out[f"{self.case}|{tag}|{step}"] = img

    g = torch.Generator().manual_seed(0)

    def rn(*shape):
        return torch.randn(*shape, generator=g)

    def three(shape):  # CaptumBaseline's form: causal, IG, Saliency
        return {"causal": rn(*shape), "IntegratedGradients": rn(*shape), "Saliency": rn(*shape).abs()}

    meta3 = {"methods": ["IntegratedGradients", "Saliency"]}
    cases = []  # (kind, inputs, results per epoch)
    for inputs in (torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 3, 8, 12, generator=g)):  # heatmap rows
        shape = tuple(inputs.shape)
        cases.append(("image", inputs, [AuditResult("input_effect", maps={"causal": rn(*shape)}, meta={"targets": [0, 1, 2, 0]})
                                        for _ in range(3)]))
        cases.append(("image", inputs, [AuditResult("captum_baseline", maps=three(shape), meta={"targets": [0, 1, 2, 0], **meta3})
                                        for _ in range(3)]))
    video = torch.rand(3, 3, 10, 6, 6, generator=g)
    cases.append(("frames", video, [AuditResult("captum_baseline", maps={"causal": rn(3, 3, 10, 6, 6), "Saliency": rn(3, 3, 10, 6, 6).abs()},
                                                meta={"targets": [0, 1, 0], "methods": ["Saliency"]}) for _ in range(2)]))
    cases.append(("frames", video, [AuditResult("captum_baseline", maps=three((3, 3, 10, 6, 6)), meta={"targets": [0, 1, 0], **meta3})
                                    for _ in range(2)]))
    for steps in (20, 80):  # a signal's bars, and its step outlines (more than MAX_BARS steps)
        signal = torch.rand(4, 1, steps, generator=g)
        cases.append(("sequence", signal, [AuditResult("captum_baseline", maps=three((4, 1, steps)), meta={"targets": [0, 1, 0, 1], **meta3})
                                           for _ in range(2)]))
        cases.append(("sequence", signal, [AuditResult("input_effect", maps={"causal": rn(4, 1, steps)}) for _ in range(2)]))
    cases.append(("sequence", torch.rand(3, 3, 30, generator=g),
                  [AuditResult("input_effect", maps={"causal": rn(3, 3, 30)}, meta={"targets": [0, 1, 0]}) for _ in range(2)]))
    for c, (kind, inputs, epochs) in enumerate(cases):
        renderer = TensorBoardRenderer(max_samples=4, figure_kind=kind)
        for step, result in enumerate(epochs):
            renderer.render_figures(Images(f"case{c}_{kind}"), [result], inputs, step=step)
        for tag, fig in renderer.figures([epochs[-1]], inputs).items():
            out[f"case{c}_{kind}_own|{tag}|last"] = figure_image(fig)
    for name, shape, axes in (("grey", (3, 1, 8, 8), None), ("colour", (3, 3, 8, 8), None),
                              ("sequence", (3, 2, 4, 20), ("time step", "feature")), ("signal", (3, 1, 1, 20), ("position", "channel"))):
        kept: dict = {}
        for step in range(3):  # the counterfactual grid kept from one audit to the next
            x, cf = torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)
            fig = counterfactual_figure({"input": x, "counterfactual": cf, "difference": cf - x}, [f"label {step} → pred {k}" for k in range(3)],
                                        failed=[1] if step else [], title=f"counterfactuals {step}", sequence_axes=axes, kept=kept)
            out[f"counterfactuals_{name}|{step}"] = figure_image(fig)
    np.savez_compressed(path, **out)
    print(f"{len(out)} images in {path}")


def compare_pixels(first: str, second: str) -> None:
    """Whether two files of :func:`kept_pixels` hold the same images, pixel for pixel."""
    import numpy as np

    a, b = np.load(first), np.load(second)
    differ = sorted(set(a.files) ^ set(b.files)) + [k for k in sorted(set(a.files) & set(b.files))
                                                    if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k])]
    print(f"{len(a.files)} and {len(b.files)} images; differing or in one file only: {differ or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit, each audited")
    parser.add_argument("--every", type=int, default=5, help="figures_every_n_audits of the second configuration")
    parser.add_argument("--repeats", type=int, default=2, help="fits per configuration (alternating)")
    parser.add_argument("--reuse-ab", action="store_true", help="time one epoch's figures with and without reused image rows")
    parser.add_argument("--rows-ab", action="store_true", help="fits of figures_every_n_audits=1 with and without reused image rows")
    parser.add_argument("--kept-ab", action="store_true", help="one epoch's figures before drawing_s25 and now (kept canvases and grid)")
    parser.add_argument("--fits", action="store_true", help="with --kept-ab: fits of figures_every_n_audits=1, before and now")
    parser.add_argument("--pixels", metavar="OUT.npz", help="save every kind of kept figure drawn over audit epochs (no timing)")
    parser.add_argument("--compare", nargs=2, metavar="NPZ", help="whether two --pixels files hold the same images")
    args = parser.parse_args()
    if args.pixels or args.compare:
        kept_pixels(args.pixels) if args.pixels else compare_pixels(*args.compare)
        return
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    if args.reuse_ab:
        reuse_ab(args.repeats)
        return
    if args.kept_ab and not args.fits:
        print(f"torch {torch.__version__}, 1 thread, medians of {args.repeats} (interleaved), renderers kept over the repeats\n")
        print("| figures | before drawing_s25: wall / process (s) | now: wall / process (s) | now / before |\n|---|---|---|---|")
        kept_ab(args.repeats)
        return
    _audit_run.AuditRun._render = _timed_render(_audit_run.AuditRun._render)
    from lightning_causal.reporting import tensorboard

    own = tensorboard.map_figures
    # (figures_every_n_audits, reused image rows, drawing_s25's kept canvases and grid); --rows-ab: the default with and
    # without the reused rows; --kept-ab --fits: before drawing_s25 and now; alternating
    configs = ([(1, False, True), (1, True, True)] if args.rows_ab else [(1, True, False), (1, True, True)] if args.kept_ab
               else [(1, True, True), (args.every, True, True)])
    runs: dict[tuple[int, bool, bool], list[dict[str, float]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for every, reuse, kept in runs:
                tensorboard.map_figures = lambda data, kind=None, reuse=False, kept=None, _r=reuse: own(data, kind, reuse=_r and reuse, kept=kept)
                try:
                    with contextlib.nullcontext() if kept else before_s25():
                        runs[every, reuse, kept].append(fit(every, args.epochs, Path(tmp) / f"{every}_{reuse}_{kept}_{r}"))
                finally:
                    tensorboard.map_figures = own
    print(f"torch {torch.__version__}, 1 thread, {args.epochs} epochs each audited, {args.repeats} fits per row (medians)\n")
    print("| figures_every_n_audits | drawing | audits (s) | drawing (s) | drawing / audits | drawing, process (s) "
          "| event file per audit (kB) | report per audit (kB) | fit wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (every, reuse, kept), rows in runs.items():
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        how = ("before drawing_s25" if not kept else "now" if args.kept_ab else "rows redraw one figure" if reuse
               else "a figure per row (before drawing_s24)")
        print(f"| {every} | {how} | {med['audits']:.1f} | {med['drawing']:.1f} "
              f"| {med['drawing'] / med['audits']:.2f} | {med['drawing_cpu']:.1f} | {med['events_kb']:.0f} | {med['report_kb']:.0f} | {med['wall']:.1f} |")

if __name__ == "__main__":
    main()
