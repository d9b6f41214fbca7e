import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.audits.base import AuditResult
from lightning_causal.causal import input_effects, patch_mask, unit_effects
from tests.helpers.models import MLP, DigitsCNN, hand_linear, seeded

X = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_input_effect_maps_broadcast_patch_effects():
    model = seeded(DigitsCNN(), 1)
    r = InputEffectAudit(patch_size=4, ace_values=None).run(model, Probe(X))
    eff = input_effects(model, X, patch_mask((1, 8, 8), 4))
    assert r.maps["effect"].shape == X.shape
    torch.testing.assert_close(r.maps["effect"][:, 0, 0, 0], eff[:, 0])
    torch.testing.assert_close(r.maps["effect"][:, 0, 7, 7], eff[:, 3])
    torch.testing.assert_close(r.maps["effect"][:, 0, 5, 2], eff[:, 2])
    torch.testing.assert_close(r.vectors["mean_abs_effect"], eff.abs().mean(0))


def test_input_effect_tabular_defaults_to_one_group_per_column():
    model = hand_linear([1.0, -2.0, 0.0, 4.0])
    x = torch.ones(5, 4)
    r = InputEffectAudit(top_k=2, ace_values=None).run(model, Probe(x))
    torch.testing.assert_close(r.vectors["mean_effect"], torch.tensor([1.0, -2.0, 0.0, 4.0]))
    assert [row["group"] for row in r.tables["top_groups"]] == [3, 1]
    assert r.scalars["top2_share"] == pytest.approx(6 / 7)


def test_ace_range_of_linear_model():
    model = hand_linear([2.0, 0.0])
    x = torch.stack([torch.linspace(0, 1, 101), torch.zeros(101)], 1)
    r = InputEffectAudit(ace_values=2, ace_samples=None).run(model, Probe(x))
    # quantiles 5% and 95% of column 0 are 0.05 and 0.95: range = 2 * 0.9
    torch.testing.assert_close(r.vectors["ace_range"], torch.tensor([1.8, 0.0]))


def test_unit_importance_is_mean_abs_unit_effect():
    model = seeded(DigitsCNN(), 2)
    r = UnitImportanceAudit(["conv2", "fc1"], top_k=4).run(model, Probe(X))
    e = unit_effects(model, X, "conv2")
    torch.testing.assert_close(r.vectors["importance/conv2"], e.abs().mean(0))
    top = [row["unit"] for row in r.tables["top_units/conv2"]]
    assert top == e.abs().mean(0).topk(4).indices.tolist()
    assert set(r.vectors) == {"importance/conv2", "importance/fc1"}


def test_result_to_dict_reports_nan_as_string():
    r = AuditResult("a", scalars={"x": float("nan")}, vectors={"v": torch.tensor([1.0, float("inf")])})
    d = r.to_dict()
    assert d["scalars"]["x"] == "nan" and d["vectors"]["v"] == [1.0, "inf"]
    assert r.non_finite() == ["x", "v"]


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: InputEffectAudit(feature_mask=torch.zeros(1, 4, dtype=torch.long), patch_size=2), "at most one"),
        (lambda: InputEffectAudit(patch_size=0), "`patch_size`"),
        (lambda: InputEffectAudit(top_k=0), "`top_k`"),
        (lambda: InputEffectAudit(ace_values=1), "`ace_values`"),
        (lambda: InputEffectAudit(ace_samples=0), "`ace_samples`"),
        (lambda: InputEffectAudit(name=""), "`name`"),
        (lambda: UnitImportanceAudit([]), "`layers`"),
        (lambda: UnitImportanceAudit(["conv1"], top_k=-1), "`top_k`"),
        (lambda: Probe(torch.zeros(0, 3)), "at least one sample"),
        (lambda: Probe(torch.zeros(3, 2), torch.zeros(2)), "`labels`"),
        (lambda: Probe("x"), "tensor"),
    ],
)
def test_constructor_checks(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


def test_validate_rejects_bad_configuration():
    with pytest.raises(ValueError, match="close matches"):
        UnitImportanceAudit(["conv9"]).validate(DigitsCNN(), Probe(X))
    with pytest.raises(ValueError, match="patch_size"):
        InputEffectAudit(patch_size=2).validate(MLP(4), Probe(torch.zeros(2, 4)))


def test_a_per_sample_feature_mask_is_refused_naming_the_mask_function():
    """A [probe_size, T] word mask failed the callback's 2-row dry run with a message about a
    shape [1 or 2, ...] the user never chose; per-sample groups come from a function of the probe."""
    audit = InputEffectAudit(feature_mask=torch.zeros(4, 6, dtype=torch.long), baseline=0, ace_values=None)
    with pytest.raises(ValueError, match=r"one mask shared by every probe sample.*\[4, 6\].*a function of the probe's inputs"):
        audit.validate(nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(24, 2)), Probe(torch.zeros(4, 6, dtype=torch.long)))


def test_input_effect_audit_does_not_warn_for_an_image_border_that_never_varies():
    """The core warns of a group constant over the probe (a flat ACE curve); an image's blank border is
    such a group every epoch, and the audit shows its range 0 as it is, without the warning."""
    import warnings

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    x[..., 0] = 0.0  # a blank column, as the digits' borders are
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = InputEffectAudit(patch_size=1, ace_values=4).run(model, Probe(x))
    assert float(r.vectors["ace_range"].view(4, 4)[:, 0].abs().max()) < 1e-6
