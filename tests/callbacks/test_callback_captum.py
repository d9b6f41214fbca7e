"""CaptumBaseline inside the callback: training stays bit-identical, TensorBoard shows both sides."""

from __future__ import annotations

import lightning.pytorch as pl
import matplotlib
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_causal import CaptumBaseline, CausalAuditCallback
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders
from tests.helpers.models import all_hook_counts

METHODS = ("IntegratedGradients", "Saliency", "GradientShap", "NoiseTunnel(Saliency)")


def _fit(tmp_path, with_callback: bool, logger=False):
    pl.seed_everything(5, verbose=False)
    module = small_module()
    cbs = [CausalAuditCallback([CaptumBaseline(methods=METHODS, patch_size=4)], probe_size=12,
                               report_dir=tmp_path / "r")] if with_callback else []
    t = quick_trainer(callbacks=cbs, max_epochs=2, logger=logger)
    t.fit(module, *synthetic_loaders())
    return module, t, np.random.get_state()[1].copy()


def test_training_bit_identical_with_captum_baseline(tmp_path):
    a, _, np_a = _fit(tmp_path, False)
    b, tb, np_b = _fit(tmp_path, True)
    assert tb.callbacks[0].audited_epochs == [0, 1]
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert np.array_equal(np_a, np_b)  # GradientShap draws from NumPy's global RNG: restored
    assert all_hook_counts(b) == 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in b.parameters())


def test_captum_tags_and_images_in_tensorboard(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="", version="")
    _, t, _ = _fit(tmp_path, True, logger=logger)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for method in ("IntegratedGradients", "Saliency"):
        for metric in ("spearman", "kendall", "deletion_auc", "insertion_auc", "stability"):
            assert f"compare/{method}/{metric}" in scalars, (method, metric, sorted(scalars)[:20])
    assert "causal/captum_baseline/deletion_auc" in scalars
    assert "compare/IntegratedGradients/spearman" in t.callback_metrics
    images = set(acc.Tags()["images"])
    assert "causal/captum_baseline/maps/sample_0/causal" in images
    assert any("curves" in tag for tag in images)
    # causal and four methods: one figure per map, input | map (figures.heatmap_row: 1.45 inches of image + 0.45
    # per panel), each readable in a TensorBoard card (image_maps.MAX_MAPS_PER_FIGURE)
    dpi = matplotlib.rcParams["figure.dpi"]
    cards = sorted(tag for tag in images if tag.startswith("causal/captum_baseline/maps/sample_0/"))
    assert len(cards) == 1 + len(METHODS)
    for tag in cards:
        card = acc.Images(tag)[-1]
        assert card.width == round((2 * 1.9 + 0.4) * dpi) and min(400 / card.width, 215 / card.height) > 0.7, tag  # a card's box
    layout = [tag for tag in acc.Tags()["tensors"] if "custom_scalars" in tag]
    assert layout


def test_deeplift_baseline_runs_inside_a_deterministic_trainer(tmp_path):
    # Trainer(deterministic=True) switches torch.use_deterministic_algorithms on; DeepLift's
    # max-pool rule has no deterministic kernel, so the audit relaxes it to warn-only meanwhile
    cb = CausalAuditCallback([CaptumBaseline(methods=("DeepLift",), patch_size=4)], probe_size=8, report_dir=tmp_path / "r")
    t = quick_trainer(callbacks=[cb], max_epochs=1, deterministic=True)
    t.fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == [0]
    assert "compare/DeepLift/spearman" in t.callback_metrics
    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
