"""Contrastive detection (``BackdoorSuppressionTerm(contrast=True)``): Neural Cleanse on the
difference between the model and a feature-shifted copy of it. The copy by hand (its head, its
norm, the model and the global RNG untouched), the contrast's value by hand, and the term's wiring:
a class flagged only on the contrast is suppressed with the contrast's trigger completed on the model,
without a region search."""

import logging
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal.backdoor.feature_shift import (
    MAX_CONTRAST_RATIO,
    Contrast,
    feature_shifted,
    output_layer,
)
from lightning_causal.causal.backdoor.flagging import ReversedTriggers
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair import backdoor_setup
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


def test_output_layer_is_the_last_linear_with_as_many_outputs_as_classes():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 5))
    assert output_layer(model, 3)[0] == "2" and output_layer(model, 5)[0] == "4"
    with pytest.raises(ValueError, match="nn.Linear output layer with 7 outputs"):
        output_layer(model, 7)


def test_feature_shifted_reinitialises_the_head_keeps_its_norm_and_leaves_the_model_and_global_rng_alone():
    model = _mlp()
    with torch.no_grad():
        model[3].weight.mul_(5.0)  # confident predictions: labels a copy can learn
    x = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    shifted = feature_shifted(model, x, 3, epochs=30, alpha=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training
    w0, w = model[3].weight, shifted[3].weight
    assert torch.allclose(w.norm(), w0.norm(), rtol=1e-5)
    assert float((w * w0).sum().detach()) < 0  # pushed away from the old head: α <w, w0> is minimised
    assert not shifted.training and not any(p.requires_grad for p in shifted.parameters())
    fitted = feature_shifted(model, x, 3, epochs=100, alpha=0.0, lr=0.02, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():  # without the push, the new head learns the model's own predictions on x
        agree = (fitted(x).argmax(1) == model(x).argmax(1)).float().mean()
    assert float(agree) >= 0.95
    again = feature_shifted(model, x, 3, epochs=30, alpha=0.5, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(a, b) for a, b in zip(shifted.state_dict().values(), again.state_dict().values()))


def test_feature_shifted_validates_its_arguments():
    with pytest.raises(ValueError, match="epochs"):
        feature_shifted(_mlp(), torch.rand(4, 1, 4, 4), 3, epochs=0)
    with pytest.raises(ValueError, match="alpha"):
        feature_shifted(_mlp(), torch.rand(4, 1, 4, 4), 3, alpha=-1.0)


def test_contrast_is_the_difference_of_log_probabilities():
    a, b = nn.Linear(2, 3), nn.Linear(2, 3)
    x = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    expected = F.log_softmax(a(x), 1) - F.log_softmax(b(x), 1)
    assert torch.allclose(Contrast(a, b)(x), expected)
    half = Contrast(a.to(torch.bfloat16), b.to(torch.bfloat16))(x.to(torch.bfloat16))
    assert half.dtype == torch.float32  # the difference of two near-equal log-probabilities, not in bfloat16


def _reversed(norms: list[float], fill: float) -> ReversedTriggers:
    c = len(norms)
    triggers = [Trigger(torch.full((1, 4, 4), fill), torch.full((1, 4, 4), fill), k) for k in range(c)]
    return ReversedTriggers(triggers, torch.zeros(c), torch.tensor(norms), torch.ones(c), torch.ones(c),
                            concentration=torch.ones(c), max_ratio=0.75, compactness=1.0)


def _one_pixel(target: int, row: int, col: int) -> Trigger:
    mask = torch.zeros(1, 4, 4)
    mask[0, row, col] = 0.9
    return Trigger(mask, torch.full((1, 4, 4), 0.25), target)


def _fake_runs(monkeypatch, plain_flags: list[int]) -> tuple[list, list]:
    """Neural Cleanse faked: the contrast flags class 1 (a one-pixel trigger at (1, 1)), the plain run
    flags ``plain_flags``; ``reverse_trigger`` (the completion) faked to return its whole region."""
    calls, completions = [], []

    def fake_neural_cleanse(model, x, num_classes, **options):
        calls.append((type(model).__name__, options.get("max_ratio")))
        if isinstance(model, Contrast):  # class 1 small on the contrast; bound MAX_CONTRAST_RATIO
            out = _reversed([4.0, 1.0, 4.0], 0.25)
            out.triggers[1] = _one_pixel(1, 1, 1)
            return ReversedTriggers(out.triggers, out.anomaly_index, out.mask_norms, out.attack_rates, out.lambdas,
                                    concentration=out.concentration, max_ratio=options["max_ratio"], compactness=1.0)
        out = _reversed([1.0 if c in plain_flags else 4.0 for c in range(3)], 0.5)
        for c in plain_flags:
            out.triggers[c] = _one_pixel(c, 3, 3)
        return out

    def fake_reverse_trigger(model, x, target, **kwargs):
        completions.append((model, target, kwargs["region"].clone(), kwargs["target_asr"]))
        return Trigger(kwargs["region"].clone(), torch.full((1, 4, 4), 0.7), target)

    monkeypatch.setattr(backdoor_setup, "neural_cleanse", fake_neural_cleanse)
    monkeypatch.setattr(backdoor_setup, "reverse_trigger", fake_reverse_trigger)
    return calls, completions


def test_a_class_flagged_on_the_contrast_only_is_suppressed_with_its_trigger_completed_on_the_model(monkeypatch, caplog):
    calls, completions = _fake_runs(monkeypatch, plain_flags=[])
    model = _mlp()
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    term = BackdoorSuppressionTerm(contrast=True, contrast_options={"epochs": 2})
    with caplog.at_level(logging.INFO):
        term.setup(model, x)
    assert f"1 (contrast score 0.25) (flag score; bound 0.75; contrast bound {MAX_CONTRAST_RATIO})" in caplog.text
    assert "contrast only: the contrast's trigger completed within 1 pixel on the model, no region search" in caplog.text
    assert calls == [("Sequential", None), ("Contrast", MAX_CONTRAST_RATIO)]
    assert term.detection.flagged == [] and term.contrast_detection.flagged == [1]
    # completed on the model itself (not the contrast) to 0.99, inside the contrast trigger's pixel grown by CONTRAST_COMPLETION
    assert backdoor_setup.CONTRAST_COMPLETION == 1
    (completed_on, target, region, rate), = completions
    grown = torch.zeros(1, 4, 4)
    grown[0, 0:3, 0:3] = 1
    assert completed_on is model and target == 1 and rate == 0.99 and torch.equal(region, grown)
    assert [t.target for t in term.triggers] == [1] and torch.equal(term.triggers[0].mask, grown)
    assert float(term.triggers[0].pattern.max()) == pytest.approx(0.7)
    assert term.regions == []  # no region search around a contrast-only trigger
    plain = BackdoorSuppressionTerm(contrast=False)
    with pytest.warns(UserWarning, match="no class flagged"):
        plain.setup(model, x)
    assert plain.triggers == [] and plain.contrast_detection is None
    restored = BackdoorSuppressionTerm(contrast=True)
    restored.load_state_dict(term.state_dict(), model)
    assert restored.contrast_detection.flagged == [1] and [t.target for t in restored.triggers] == [1]
    assert torch.equal(restored.triggers[0].mask, grown) and restored.regions == []
    old = term.state_dict()
    del old["contrast_detection"]  # a checkpoint written before the option existed
    restored.load_state_dict(old, model)
    assert restored.contrast_detection is None


def test_plain_flags_keep_their_region_search_beside_a_contrast_only_class(monkeypatch):
    _, completions = _fake_runs(monkeypatch, plain_flags=[2])
    model = _mlp()
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    term = BackdoorSuppressionTerm(contrast=True, contrast_options={"epochs": 2})
    term.setup(model, x)
    # the plain-flagged trigger first (the regions pair with the first triggers), the completed contrast one after
    assert [t.target for t in term.triggers] == [2, 1] and [c[1] for c in completions] == [1]
    assert len(term.regions) == 1
    near = torch.zeros(1, 4, 4)
    near[0, 2:4, 2:4] = 1  # the plain trigger's pixel (3, 3) grown by adversarial_region=1
    assert torch.equal(term.regions[0], near)
    y = torch.tensor([0, 1, 2, 0] * 4)
    term.loss(model, x, y)  # region rows aim at the plain trigger's target, the stamps alternate
    assert term._targets(6, x.device, len(term.regions)).flatten().tolist() == [2] * 6
    assert term._targets(4, x.device).flatten().tolist() == [2, 1, 2, 1]


class _TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _mlp()

    def forward(self, x):
        return self.net(x), x.sum()


def test_by_default_the_contrast_runs_where_it_can_and_is_skipped_elsewhere(monkeypatch):
    calls, _ = _fake_runs(monkeypatch, plain_flags=[])
    images = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    term = BackdoorSuppressionTerm(contrast_options={"epochs": 1})
    assert term.contrast is None  # the default
    term.setup(_mlp(), images)  # model(x) logits, image inputs, an nn.Linear head: it runs
    assert [c[0] for c in calls] == ["Sequential", "Contrast"] and term.contrast_detection.flagged == [1]
    conv_head = nn.Sequential(nn.Conv2d(1, 3, 4), nn.Flatten())  # no nn.Linear head with one output per class
    tuple_out = _TupleOut()
    table = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    for model, x, options in ((conv_head, images, {}), (tuple_out, images, {"output": 0}), (table, torch.rand(16, 6), {})):
        calls.clear()
        term = BackdoorSuppressionTerm(**options)
        with pytest.warns(UserWarning, match="no class flagged"):
            term.setup(model, x)
        assert [c[0] for c in calls] == [type(model).__name__] and term.contrast_detection is None
    off = BackdoorSuppressionTerm(contrast=False)
    calls.clear()
    with pytest.warns(UserWarning, match="no class flagged"):
        off.setup(_mlp(), images)
    assert [c[0] for c in calls] == ["Sequential"]
    with pytest.raises(TypeError, match="contrast"):
        BackdoorSuppressionTerm(contrast="yes")


def test_contrast_is_refused_where_it_cannot_run():
    trigger = Trigger(torch.ones(1, 4, 4), torch.ones(1, 4, 4), 0)
    with pytest.raises(ValueError, match="contrast=True. with trigger=None"):
        BackdoorSuppressionTerm(trigger, contrast=True)
    with pytest.raises(ValueError, match="no `output`"):
        BackdoorSuppressionTerm(contrast=True, output=0)
    with pytest.raises(ValueError, match=r"contrast_options.*\['steps'\]"):
        BackdoorSuppressionTerm(contrast=True, contrast_options={"steps": 3})
    table = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"image inputs \[N, C, H, W\] with `contrast=True`.*\[10, 6\]"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BackdoorSuppressionTerm(contrast=True, reverse_options={"steps": 2}).setup(table, torch.rand(10, 6))


def test_the_contrast_run_on_a_real_model_is_deterministic_and_leaves_the_model_and_rng_as_they_were():
    model = _mlp(1).eval()
    x = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    runs = []
    for _ in range(2):
        term = BackdoorSuppressionTerm(contrast=True, reverse_options={"steps": 4}, contrast_options={"epochs": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an untrained model: whatever is flagged, it is said
            term.setup(model, x)
        runs.append(term.contrast_detection)
    assert torch.equal(runs[0].mask_norms, runs[1].mask_norms)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
