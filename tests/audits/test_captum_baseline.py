"""CaptumBaseline audit: causal effects and Captum maps compared on equal terms, leaving no trace."""

from __future__ import annotations

import json
import math
import random
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from captum.metrics import sensitivity_max

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from lightning_causal.baselines import metrics as M
from lightning_causal.baselines.captum_methods import seeded_rng
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.groups import broadcast_groups, patch_mask
from lightning_causal.reporting.comparison import attribution_grid, curves_figure
from lightning_causal.reporting.tensorboard import scalar_tags
from tests.helpers.models import MLP, DigitsCNN, all_hook_counts, seeded

FAST = (("IntegratedGradients", {"n_steps": 8}), "Saliency")


def _cnn(batch_norm: bool = False):
    model = seeded(DigitsCNN((2, 4), 8, batch_norm=batch_norm), 0)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, x


def test_result_layout_maps_scalars_curves_and_tags():
    model, x = _cnn()
    result = CaptumBaseline(FAST, patch_size=4, top_k=2).run(model, Probe(x))
    assert set(result.maps) == {"causal", "IntegratedGradients", "Saliency"}
    assert all(m.shape == x.shape for m in result.maps.values())
    mask = patch_mask((1, 8, 8), 4)
    effects = input_effects(model, x, mask, 0.0, target=model(x).argmax(1))
    assert torch.allclose(result.maps["causal"], broadcast_groups(effects, mask, x.shape))
    for method in ("IntegratedGradients", "Saliency"):
        for metric in ("spearman", "kendall", "topk", "deletion_auc", "insertion_auc", "stability"):
            assert f"compare/{method}/{metric}" in result.scalars
    assert {"deletion_auc", "insertion_auc", "stability"} <= set(result.scalars)
    tags = scalar_tags(result)
    assert "compare/Saliency/kendall" in tags and "causal/captum_baseline/deletion_auc" in tags
    for kind in ("deletion", "insertion"):
        curve = result.curves[kind]
        assert curve["x"][0] == 0.0 and curve["x"][-1] == 1.0 and len(curve["x"]) == 5  # 4 patches
        assert set(curve) == {"x", "causal", "IntegratedGradients", "Saliency"}
    assert [row["method"] for row in result.tables["comparison"]] == ["IntegratedGradients", "Saliency", "causal"]
    assert set(result.vectors) == {"mean_abs/causal", "mean_abs/IntegratedGradients", "mean_abs/Saliency"}
    json.dumps(result.to_dict())
    assert result.non_finite() == []


def test_feature_ablation_agrees_exactly_with_the_causal_effects():
    model, x = _cnn()
    r = CaptumBaseline(["FeatureAblation"], patch_size=2).run(model, Probe(x))
    assert torch.allclose(r.maps["FeatureAblation"], r.maps["causal"], atol=1e-5)
    assert r.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)
    assert r.scalars["compare/FeatureAblation/topk"] == pytest.approx(1.0)
    for metric in ("deletion_auc", "insertion_auc", "stability"):  # same scores => same metric values
        assert r.scalars[f"compare/FeatureAblation/{metric}"] == pytest.approx(r.scalars[metric], abs=1e-6)


def test_captum_maps_are_summed_over_the_same_groups():
    model = seeded(MLP(4, (6,), 2), 0)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[0, 0, 1, 1]])
    r = CaptumBaseline(["InputXGradient"], feature_mask=mask).run(model, Probe(x))
    xg = x.clone().requires_grad_(True)
    t = model(x).argmax(1)
    grad = torch.autograd.grad(model(xg).gather(1, t.view(-1, 1)).sum(), xg)[0]
    per_group = torch.stack([(x * grad)[:, :2].sum(1), (x * grad)[:, 2:].sum(1)], 1)
    assert torch.allclose(r.maps["InputXGradient"], broadcast_groups(per_group, mask, x.shape), atol=1e-6)


def test_audit_leaves_no_trace_even_inside_inference_mode():
    model, x = _cnn(batch_norm=True)
    model.train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    bn = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = all_hook_counts(model)
    rng = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    audit = CaptumBaseline(("GradientShap", "NoiseTunnel(Saliency)", "ShapleyValueSampling"), patch_size=4,
                           settings=CompareSettings(reference_metrics=True, n_perturb_samples=2), layers=["conv2"])
    with torch.inference_mode():
        result = audit.run(model, Probe(x.clone()))
    assert torch.equal(torch.random.get_rng_state(), rng[0])
    assert np.array_equal(np.random.get_state()[1], rng[1]) and random.getstate() == rng[2]
    assert all_hook_counts(model) == hooks
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(p.grad, torch.ones_like(p)) and p.requires_grad for p in model.parameters())
    assert all(torch.equal(v, bn[k]) for k, v in model.state_dict().items())  # BatchNorm statistics untouched
    assert "compare/GradientShap/sensitivity_max" in result.scalars and "infidelity" in result.scalars
    assert "compare/LayerConductance-conv2/spearman" in result.scalars


def test_runs_are_deterministic_with_randomised_methods():
    model, x = _cnn()
    audit = CaptumBaseline(("GradientShap", "NoiseTunnel(Saliency)"), patch_size=4, seed=7)
    assert audit.run(model, Probe(x)).scalars == audit.run(model, Probe(x)).scalars


def test_explicit_target_noise_sigma_and_method_options_are_used():
    model, x = _cnn()
    audit = CaptumBaseline(
        ["IntegratedGradients"], patch_size=4, target=3, noise_sigma=0.0,
        method_options={"IntegratedGradients": {"n_steps": 2}},
    )
    assert audit.specs[0].options["n_steps"] == 2
    r = audit.run(model, Probe(x))
    assert r.scalars["stability"] == 1.0 and r.scalars["compare/IntegratedGradients/stability"] == 1.0  # no noise
    mask = patch_mask((1, 8, 8), 4)
    assert torch.allclose(r.maps["causal"], broadcast_groups(input_effects(model, x, mask, 0.0, target=3), mask, x.shape))


def test_signed_comparisons_can_be_requested():
    model, x = _cnn()
    absolute = CaptumBaseline(["Saliency"], patch_size=2).run(model, Probe(x))
    signed = CaptumBaseline(["Saliency"], patch_size=2, settings=CompareSettings(absolute=False)).run(model, Probe(x))
    assert absolute.scalars["compare/Saliency/spearman"] != signed.scalars["compare/Saliency/spearman"]
    assert absolute.scalars["compare/Saliency/deletion_auc"] == signed.scalars["compare/Saliency/deletion_auc"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"methods": ("Salency",)}, ValueError, "Did you mean 'Saliency'"),
        ({"methods": ()}, ValueError, "at least one"),
        ({"methods": ("Saliency", "Saliency")}, ValueError, "each method once"),
        ({"method_options": {"DeepLift": {}}}, ValueError, "`method_options`"),
        ({"method_options": {"Saliency": {"n_steps": 3}}}, ValueError, "unknown"),
        ({"feature_mask": torch.zeros(1, 4, dtype=torch.long), "patch_size": 2}, ValueError, "at most one"),
        ({"feature_mask": torch.tensor([[True, False]])}, TypeError, "integer group ids but got dtype torch.bool"),
        ({"feature_mask": torch.tensor([[0, -1, 1]])}, ValueError, "group ids >= 0 but got -1"),
        ({"feature_mask": "words"}, TypeError, "integer tensor but got str"),
        ({"patch_size": 0}, ValueError, "`patch_size`"),
        ({"top_k": 0}, ValueError, "`top_k`"),
        ({"noise_sigma": -0.1}, ValueError, "`noise_sigma`"),
        ({"seed": 1.5}, ValueError, "`seed`"),
        ({"layers": ["conv1", 3]}, ValueError, "`layers`"),
        ({"settings": {"steps": 3}}, TypeError, "`settings`"),
        ({"name": ""}, ValueError, "`name`"),
    ],
)
def test_constructor_validates(kwargs, error, match):
    with pytest.raises(error, match=match):
        CaptumBaseline(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "`steps`"),
        ({"score": "logit"}, "`score`"),
        ({"noise_fraction": 0.0}, "`noise_fraction`"),
        ({"stability_repeats": 0}, "`stability_repeats`"),
        ({"n_perturb_samples": 0}, "`n_perturb_samples`"),
        ({"layer_method": "LayerGradCam"}, "`layer_method`"),
    ],
)
def test_settings_validate(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompareSettings(**kwargs)


def test_validate_checks_probe_and_layers():
    model, x = _cnn()
    with pytest.raises(ValueError, match="Expected one input tensor for CaptumBaseline"):
        CaptumBaseline().validate(model, Probe((x, x)))
    with pytest.raises(ValueError, match="conv"):
        CaptumBaseline(layers=["conv3"]).validate(model, Probe(x))
    with pytest.raises(ValueError, match="patch_size"):
        CaptumBaseline(patch_size=2).validate(seeded(MLP(4), 0), Probe(torch.ones(2, 4)))
    CaptumBaseline(patch_size=2, layers=["conv1"]).validate(model, Probe(x))


def test_comparison_figures():
    model, x = _cnn()
    r = CaptumBaseline(FAST, patch_size=4).run(model, Probe(x))
    grid = attribution_grid(x, r.maps, max_samples=3)
    assert len(grid.axes) == 3 * 4 + 3  # 3 rows x (input + 3 maps) + one colourbar per map column
    images = [ax.images[0] for ax in grid.axes[:12] if ax.images]
    causal = [im for im in images if im.get_cmap().name == "RdBu_r"][0]
    lo, hi = causal.get_clim()
    assert lo == -hi and hi == pytest.approx(float(r.maps["causal"][:3].abs().max()))  # symmetric, not clipped
    fig = curves_figure(r.curves)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    plt.close(grid)
    plt.close(fig)
    with pytest.raises(ValueError, match="shaped like the input"):
        attribution_grid(x, {"causal": torch.zeros(6, 1, 4, 4)})


class _Categorical(torch.nn.Module):
    """Three categorical columns of 4, 3 and 2 levels, one embedding each."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embs = torch.nn.ModuleList(torch.nn.Embedding(c, 2) for c in (4, 3, 2))
        self.head = torch.nn.Linear(6, 2)

    def forward(self, codes):
        return self.head(torch.cat([emb(codes[:, i]) for i, emb in enumerate(self.embs)], 1))


def _codes(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, c, (n,), generator=g) for c in (4, 3, 2)], 1)


def test_stability_of_categorical_codes_draws_each_column_from_its_own_codes():
    """The stability perturbation drew a binary column's replacement from every column's codes
    (code 3 of the 4-level column): IndexError deep in the model's embedding, or a silently
    invalid code where it was in range."""
    model, codes = _Categorical(), _codes()
    probe = Probe(codes)
    with pytest.raises(ValueError, match=r"token_pool='position'"):
        CaptumBaseline(methods=("FeatureAblation",), baseline=0, settings=CompareSettings(noise_fraction=0.9)).run(model, probe)
    seen = []

    def explain(z):
        seen.append(z.clone())
        return z.float()

    eligible = torch.ones_like(codes, dtype=torch.bool)
    eligible[0] = False
    M.token_stability(explain, codes, eligible, 0.9, n_repeats=3, pool="position")
    replaced = torch.stack(seen[1:]) != codes
    assert replaced.any(dim=(0, 1)).all()  # every column gets new codes
    for j in range(3):
        assert set(torch.stack(seen)[..., j].unique().tolist()) <= set(codes[1:, j].tolist())
    assert all(torch.equal(z[0], codes[0]) for z in seen)  # ineligible codes stay
    settings = CompareSettings(noise_fraction=0.9, token_pool="position")
    r = CaptumBaseline(methods=("FeatureAblation",), baseline=0, settings=settings).run(model, probe)
    assert np.isfinite(r.scalars["stability"]) and r.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="token_pool"):
        CompareSettings(token_pool="column")


class _CodeColumn(torch.nn.Module):
    """Column 0 of a float matrix is a category code, embedded through ``.long()``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = torch.nn.Embedding(4, 2), torch.nn.Linear(2 + 3, 2)

    def forward(self, x):
        return self.head(torch.cat([self.emb(x[:, 0].long()), x[:, 1:]], 1))


def test_a_gradient_method_blind_to_a_code_column_is_named_in_a_warning():
    """IntegratedGradients gives exactly 0 to a code column read through .long() (as Captum does)
    while its causal effect is the largest: the low agreement came with no word why."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(1, 4, (8, 1), generator=g).float(), torch.randn(8, 3, generator=g)], 1)
    audit = CaptumBaseline(methods=(("IntegratedGradients", {"n_steps": 8}), "Saliency"), feature_names=["colour", "a", "b", "c"])
    with pytest.warns(UserWarning, match=r"IntegratedGradients gives exactly 0 .* \['colour'\]") as record:
        r = audit.run(_CodeColumn(), Probe(x))
    assert sum("Saliency gives exactly 0" in str(w.message) for w in record) == 1
    assert r.vectors["mean_abs/IntegratedGradients"][0] == 0 and r.vectors["mean_abs/causal"][0] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CaptumBaseline(methods=(("IntegratedGradients", {"n_steps": 8}),)).run(seeded(MLP(4, (6,), 2), 0), Probe(x))


def test_per_sample_groups_of_float_inputs_follow_their_rows_in_the_reference_metrics():
    """Per-sample groups (a function of the probe) on float inputs: Captum's sensitivity repeats each
    sample k times, and each repeated row keeps its sample's groups (it crashed: groups [3, 4] for
    12 rows); sensitivity equals Captum's sensitivity_max of the causal effects computed by hand."""
    model = seeded(MLP(4, (8,), 3), 0).double()
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mask = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 2, 2]])  # group 2 absent from two samples
    r = CaptumBaseline(("Saliency",), feature_mask=lambda z: mask,
                       settings=CompareSettings(reference_metrics=True, n_perturb_samples=4)).run(model, Probe(x))
    with torch.no_grad():
        target = model(x).argmax(1)

    def causal(z, t):  # rows repeat the samples: row r keeps the groups of sample r // k
        z = z[0] if isinstance(z, tuple) else z
        k, out = z.shape[0] // 3, torch.zeros(z.shape[0], 3, dtype=z.dtype)
        with torch.no_grad():
            for row in range(z.shape[0]):
                for g in mask[row // k].unique().tolist():
                    cut = z[row].clone()
                    cut[mask[row // k] == g] = 0.0
                    out[row, g] = model(z[row:row + 1])[0, t[row]] - model(cut[None])[0, t[row]]
        return out

    torch.testing.assert_close(r.maps["causal"], causal(x, target).gather(1, mask), atol=1e-12, rtol=0)
    radius = 0.1 * x.std(0, keepdim=True)  # noise_fraction of each column's sd over the samples: a box of each column's own

    def perturb(z, perturb_radius):  # Captum's uniform draw, of [-1, 1] times each element's radius
        return (z + (torch.FloatTensor(*z.shape).uniform_(-1.0, 1.0) * radius.float()).to(z.dtype),)

    with seeded_rng(0):
        want = sensitivity_max(lambda z, target: (causal(z, target),) if isinstance(z, tuple) else causal(z, target),
                               x, perturb_func=perturb, n_perturb_samples=4, target=target)
    assert r.scalars["sensitivity_max"] == pytest.approx(float(want.mean()), abs=1e-10)
    assert math.isfinite(r.scalars["compare/Saliency/sensitivity_max"]) and math.isfinite(r.scalars["infidelity"])


def test_an_unknown_method_names_the_methods_parameter():
    """CaptumBaseline(methods=("Saliency", "GuidedBackprop")) said "Expected argument `method`": the
    parameter the user passed is `methods`."""
    from lightning_causal.audits import CaptumBaseline

    with pytest.raises(ValueError, match=r"each entry of argument `methods` to be one of .* but got 'IntegratedGradient'\. Did you mean 'IntegratedGradients'\?"):
        CaptumBaseline(("IntegratedGradient",))
    with pytest.raises(TypeError, match=r"each entry of argument `methods` to be a name or a \(name, options\) pair but got 3"):
        CaptumBaseline(("Saliency", 3))
