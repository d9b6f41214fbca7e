"""BackdoorAudit on RGB images [N, 3, H, W] checked against hand computations (a new user's trial)."""

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import Trigger
from lightning_causal.causal.backdoor.triggers import attack_success_rate


def _rgb_setup():
    torch.manual_seed(5)  # x's predictions: classes 1 and 2 (21 and 3), so each class has inputs to move
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(24, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(24) % 3
    mask = torch.zeros(1, 8, 8)
    mask[:, 5:8, 5:8] = 1.0  # a 3x3 patch in the bottom-right corner
    pattern = torch.zeros(3, 8, 8)
    pattern[0], pattern[2] = 1.0, 1.0  # magenta
    return model, x, y, Trigger(mask, pattern, target=0)


def test_known_rgb_trigger_matches_hand_computation():
    model, x, y, trigger = _rgb_setup()
    r = BackdoorAudit(trigger).run(model, Probe(x, y))
    stamped = (1 - trigger.mask) * x + trigger.mask * trigger.pattern
    keep = y != 0
    with torch.no_grad():
        asr = (model(stamped[keep]).argmax(1) == 0).float().mean()
        ace = (model(stamped[keep])[:, 0] - model(x[keep])[:, 0]).mean()
        acc = (model(x).argmax(1) == y).float().mean()
    assert r.scalars["asr"] == pytest.approx(float(asr))
    assert r.scalars["trigger_ace"] == pytest.approx(float(ace), abs=1e-5)
    assert r.scalars["clean_accuracy"] == pytest.approx(float(acc))
    assert torch.equal(r.images["triggered_inputs"], stamped[:4])
    assert torch.equal(r.images["trigger"][0], trigger.mask * trigger.pattern)  # colour kept, corner kept


def test_reversed_rgb_outputs_are_consistent_and_state_is_restored():
    model, x, y, _ = _rgb_setup()
    model.train()
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    r = BackdoorAudit(steps=5).run(model, Probe(x, y))
    assert model.training and torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    masks, patterns = r.images["reversed_masks"], r.images["reversed_patterns"]
    assert masks.shape == (3, 1, 8, 8) and patterns.shape == (3, 3, 8, 8)
    assert torch.equal(r.images["reversed_triggers"], masks * patterns)
    norms = torch.tensor(r.meta["mask_norms"], dtype=torch.float64)
    assert torch.allclose(masks.flatten(1).sum(1).double(), norms, atol=1e-5)
    assert "notes" not in r.meta  # no class every input is predicted as: the index reads all 3 norms
    med = norms.median()  # three values: the middle one
    index = (med - norms) / (1.4826 * (norms - med).abs().median())  # Neural Cleanse's MAD index
    assert torch.allclose(r.vectors["anomaly_index"].double(), index, atol=1e-4)
    assert torch.allclose(r.vectors["norm_ratio"].double(), norms / med, atol=1e-5)


def test_float_probe_labels_are_named_with_their_dtype():
    model, x, y, trigger = _rgb_setup()
    with pytest.raises(ValueError, match=r"`probe.labels`.*torch.float32"):
        BackdoorAudit(trigger).run(model, Probe(x, y.float()))


def test_attack_success_rate_names_the_dtype_of_float_labels():
    model, x, y, trigger = _rgb_setup()
    with pytest.raises(ValueError, match=r"`y`.*\[24\] of dtype torch.float32"):
        attack_success_rate(model, x, y.float(), trigger)


def test_drift_of_a_constant_vector_has_no_nan_spearman():
    # Neural Cleanse's reversed_asr is often [1, 1, 1] at two epochs in a row: its Spearman is undefined
    from lightning_causal.audits.drift import vector_drift

    out = vector_drift({"reversed_asr": torch.ones(3), "mask_norm": torch.tensor([1.0, 2.0, 3.0])},
                       {"reversed_asr": torch.ones(3), "mask_norm": torch.tensor([3.0, 2.0, 1.0])})
    assert "drift/reversed_asr/spearman" not in out
    assert all(v == v for v in out.values())  # no NaN
    assert out["drift/reversed_asr/shift"] == 0.0 and out["drift/mask_norm/spearman"] == pytest.approx(-1.0)


def test_reversed_trigger_grid_title_fits_in_the_figure():
    # the title the TensorBoard renderer gives a 3-class BackdoorAudit's grid ran past both edges of the image
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal.reporting.figures import image_grid_figure

    images = {"masks": torch.rand(3, 1, 8, 8), "patterns": torch.rand(3, 3, 8, 8)}
    fig = image_grid_figure(images, ["red", "green", "blue"], "backdoor: reversed per class (red: flagged)", [0])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_repair_term_names_a_trigger_target_the_model_does_not_have():
    # was "RuntimeError: index 7 is out of bounds for dimension 1 with size 3" from inside the unlearning loss
    from lightning_causal.repair import BackdoorSuppressionTerm

    model, x, y, trigger = _rgb_setup()
    term = BackdoorSuppressionTerm(Trigger(trigger.mask, trigger.pattern, target=7))
    term.setup(model)
    with pytest.raises(ValueError, match=r"`target` in \[0, 2\].*but got 7"):
        term.loss(model, x[:6], y[:6])
