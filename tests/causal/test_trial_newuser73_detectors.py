"""Trial newuser73: object detectors (docs/your_model.md, "Object detectors").

A detector returns in eval mode one dict per image (``{"boxes", "scores", "labels"}``, each of its own length) and
trains on ``(images, targets)`` batches whose targets are such dicts. Before: without ``output=`` the list was refused
with advice for a training-mode tuple (``out[0] if isinstance(out, tuple)``: the first image's dict), ``output=0``
with "got dict" alone; ``(images, targets)`` batches were refused with the advice
``unpack_batch=lambda batch: (batch[0], batch[1], None)``, which hands the targets to the audits as labels (refused in
turn as "the labels of one head"). Now each names the per-image results and the way: a callable giving each image its
classes' best scores, and ``unpack_batch`` without the targets (or image-level labels made from them). The page's
recipes give the effects of a float64 "set the patch to 0, rerun, difference" loop.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.batches import unpack
from lightning_causal.causal import input_effects

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


@pytest.fixture(scope="module")
def ns():
    code = re.search(r"<!-- detector -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "<your_model.md detector>", "exec"), namespace)  # noqa: S102 - the page's own example
    return namespace


def _hand(model, x, mask, read, c):
    """f_c(x) - f_c(x | do(patch g := 0)), one pass per patch."""
    with torch.no_grad():
        base = read(model(x))[:, c]
        return torch.stack([base - read(model(x * (mask != g)))[:, c] for g in range(int(mask.max()) + 1)], 1)


def test_the_page_recipes_equal_a_hand_loop(ns):
    x, mask = ns["x"].double(), ns["mask"]
    net = copy.deepcopy(ns["net"]).double()
    assert torch.allclose(input_effects(net, x, mask, output=ns["peaks"], target=1), _hand(net, x, mask, ns["peaks"], 1))
    detector = ns["Detector"](net)
    got = input_effects(detector, x, mask, output=ns["best"], target=1)
    hand = _hand(detector, x, mask, ns["best"], 1)
    assert torch.allclose(got, hand) and hand.abs().sum() > 0
    # the per-image reduction keeps each image's own detections: its best cross score, 0 where it has none
    with torch.no_grad():
        results = detector(x)
    for row, o in zip(ns["best"](results), results):
        cross = o["scores"][o["labels"] == 1]
        assert row[1] == (cross.max() if len(cross) else 0)


@pytest.mark.parametrize("output", [None, 0, "scores", lambda out: torch.cat([o["scores"] for o in out])])
def test_per_image_results_are_refused_naming_the_reduction(ns, output):
    x, mask = ns["x"], ns["mask"]
    with pytest.raises((TypeError, ValueError)) as err:
        input_effects(ns["Detector"](ns["net"]), x, mask, output=output, target=1)
    message = str(err.value)
    assert "per-image dicts with keys ['boxes', 'scores', 'labels']" in message
    assert "scatter_reduce(0, o['labels'], o['scores'], 'amax')" in message
    assert "isinstance(out, tuple)" not in message  # the training-mode tuple's advice: out[0], the first image


def test_a_dense_heatmap_named_by_its_key_is_refused_naming_its_peak(ns):
    with pytest.raises(ValueError, match=r"`out.amax\(\(2, 3\)\)` for each class's peak of a detector's heatmap"):
        input_effects(ns["net"], ns["x"], ns["mask"], output="heatmap", target=1)


def _targets(n):
    return [{"boxes": torch.zeros(i % 3, 4), "labels": torch.arange(i % 3)} for i in range(n)]


def test_detection_batches_are_refused_naming_unpack_batch_without_the_targets():
    x, targets = torch.rand(4, 1, 32, 32), _targets(4)
    with pytest.raises(ValueError) as err:
        unpack((x, targets))
    message = str(err.value)
    assert "`unpack_batch=lambda batch: (batch[0], None, None)`" in message
    assert "(batch[0], batch[1], None)" not in message  # the targets as labels
    with pytest.raises(ValueError, match=r"per-image target dicts with keys \['boxes', 'labels'\]"):
        unpack((x, targets), lambda batch: (batch[0], batch[1], None))
    with pytest.raises(ValueError, match=r"torch.stack\(batch\[0\]\), None, None"):
        unpack((list(x), targets))  # images as a list, as torchvision's detectors take them
    # the image-level labels the message writes
    way = re.search(r"e\.g\. `unpack_batch=(lambda batch: .*?)` \(whether", message).group(1)
    inputs, labels, _ = unpack((x, targets), eval(way.replace("== c", "== 1")))  # noqa: S307 - the message's code
    assert inputs is x and labels.tolist() == [0, 0, 1, 0]  # class 1 only in the third image


class _Module(pl.LightningModule):
    def __init__(self, net):
        super().__init__()
        self.model = net

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        return self(batch[0])["heatmap"].mean()

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_callback_refuses_targets_at_set_up_and_runs_with_the_page_way(ns, tmp_path):
    x = torch.rand(8, 1, 32, 32)
    data = [(x[i], t) for i, t in enumerate(_targets(8))]
    loader = DataLoader(data, batch_size=4, collate_fn=lambda b: (torch.stack([s[0] for s in b]), [s[1] for s in b]))

    def fit(callback):
        trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
        trainer.fit(_Module(ns["CenterNet"]()), loader, loader)
        return trainer

    audit = InputEffectAudit(patch_size=8, output=ns["peaks"], target=1, ace_values=None)
    with pytest.raises(MisconfigurationException, match=r"unpack_batch=lambda batch: \(batch\[0\], None, None\)"):
        fit(CausalAuditCallback([audit], probe_size=8))
    trainer = fit(CausalAuditCallback([audit], probe_size=8, unpack_batch=lambda batch: (batch[0], None, None)))
    assert "causal/input_effect/mean_abs_effect" in trainer.callback_metrics


def _curve_warnings(model, x, output, **kwargs):
    from lightning_causal import CaptumBaseline
    from lightning_causal.audits import Probe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CaptumBaseline(("Saliency",), patch_size=8, output=output, target=1, **kwargs).run(model, Probe(x))
    return [str(w.message) for w in caught if "softmax over the model's outputs" in str(w.message)]


def test_the_curves_warn_of_a_softmax_over_a_detectors_scores(ns):
    """The deletion and insertion curves took a softmax over each class's best detection score, independent
    sigmoids (0.9 beside two 0: 0.55), without a word; they warn now, naming CompareSettings(score='raw'), which
    silences it, as the classes' logits say nothing."""
    from lightning_causal.audits import CompareSettings

    x, detector = ns["x"], ns["Detector"](ns["net"], threshold=0.0)  # every peak kept: scores in (0, 1) in every image
    said = _curve_warnings(detector, x, ns["best"])
    assert len(said) == 1 and "lies in [0, 1] and their rows do not sum to 1" in said[0]
    assert "`settings=CompareSettings(score='raw')`" in said[0]
    assert not _curve_warnings(detector, x, ns["best"], settings=CompareSettings(score="raw"))
    assert not _curve_warnings(ns["net"], x, ns["peaks"])  # logits


def test_a_counterfactual_of_decoded_scores_without_a_gradient_names_the_dense_heads(ns):
    """Decoded scores of a detector that keeps no box are constants (0 for a missed cross): the gradient search was
    warned of (a gradient of 0 at every sample) or refused (none at all) naming a step, ReLUs, a .detach() or an argmax
    only; both name the decoding and the dense heads now."""
    from lightning_causal.causal import CounterfactualSettings, counterfactual_explanation

    detector = ns["Detector"](ns["net"], threshold=1.0)  # no box passes: every cross is missed
    said = "a detector's decoding: its scores are constants where no box passes"
    scores = lambda out: torch.stack([torch.full((len(out),), 0.3), ns["best"](out)[:, 1]], 1)  # noqa: E731 - zero gradient
    with pytest.warns(UserWarning, match=said):
        counterfactual_explanation(detector, ns["x"][:2], 1, output=scores, settings=CounterfactualSettings(steps=2))
    constants = lambda out: torch.stack([torch.full((len(out),), 0.3), torch.zeros(len(out))], 1)  # noqa: E731 - none
    with pytest.raises(ValueError, match=said):
        counterfactual_explanation(detector, ns["x"][:2], 1, output=constants, settings=CounterfactualSettings(steps=2))
