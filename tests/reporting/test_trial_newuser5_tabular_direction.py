"""The bars of one tabular explanation (``InputEffectAudit`` alone) were coloured by the sign of the
mean effect over the probe, captioned "red: raises the output". With standardised columns and the
default baseline 0 (their mean), the effect of a column of a linear model is ``a (x - 0)``, whose mean
over the probe is ``a`` times the probe's mean of the column, close to 0 and of either sign: on
scikit-learn's diabetes data an MLP's strongest positive column, ``s5``, was drawn blue ("lowers the
output"), its mean effect -0.018 beside a mean |effect| of 0.25. Where one output is explained for every
sample, the colour is now the direction of the column, the sign of the covariance of its values and
its effects over the probe ("red: a higher value raises the output"), which for ``a x`` is the sign of
``a`` whatever the probe's mean; a group of several columns has no such direction and is grey.
Explanations of each sample's predicted class keep the mean's sign (its values support the class)."""

from __future__ import annotations

import torch
from matplotlib.colors import to_rgba
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps


def _bars(fig):
    """Name -> bar colour of a one-map tabular figure, and its x label."""
    [ax] = fig.axes
    names = [t.get_text() for t in ax.get_yticklabels()]
    return {n: to_rgba(p.get_facecolor()) for n, p in zip(names, ax.patches)}, ax.get_xlabel()


def _linear_probe():
    """A linear regression ``f = 2 x0 - 1 x1 + 0.5 x2`` on columns whose probe means have the
    probe means give mean effects of the opposite sign (both means -0.2) or none (x2)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0) + torch.tensor([-0.2, -0.2, 0.0], dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
        model.bias.zero_()
    return model, x


def test_one_output_bars_are_coloured_by_the_direction_of_each_column():
    model, x = _linear_probe()
    r = InputEffectAudit(feature_names=["up", "down", "flat"], ace_values=None).run(model, Probe(x))
    effect = r.maps["effect"]
    assert torch.allclose(effect, x * torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64))  # f(x) - f(x | x_j := 0)
    mean = effect.mean(0)
    assert mean[0] < 0 < mean[1]  # the mean's sign contradicts the coefficients': the old colours
    [(tag, fig)] = tabular_maps(MapData(x, dict(r.maps), r.audit, r.meta))
    colours, label = _bars(fig)
    assert colours["up"] == to_rgba("tab:red")  # higher values raise the output (coefficient +2)
    assert colours["down"] == to_rgba("tab:blue")  # coefficient -1
    assert colours["flat"] == to_rgba("tab:red")  # +0.5, the probe's mean of x2 is 0
    assert "a higher value raises the output" in label


def test_a_fixed_target_class_is_coloured_by_direction_and_groups_of_columns_are_grey():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 4, generator=g)
    x = x - x.mean(0) + torch.tensor([-0.3, 0.3, 0.0, 0.0])
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.5, -2.0, 1.0, 1.0]]))
        model.bias.zero_()
    mask = torch.tensor([[0, 1, 2, 2]])  # columns 2 and 3 form one group
    r = InputEffectAudit(feature_mask=mask, target=1, feature_names=["a", "b", "pair"], ace_values=None).run(model, Probe(x))
    [(_, fig)] = tabular_maps(MapData(x, dict(r.maps), r.audit, r.meta))
    colours, label = _bars(fig)
    assert colours["a"] == to_rgba("tab:red") and colours["b"] == to_rgba("tab:blue")
    assert colours["pair"] == to_rgba("tab:gray")
    assert "a higher value raises the class score" in label and "grey" in label


def test_the_predicted_class_keeps_the_sign_of_the_mean_effect():
    """Explaining each sample's predicted class, a column's values support the prediction (mean
    effect > 0) on both sides of its mean: red, as before."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 2, generator=g)
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    r = InputEffectAudit(feature_names=["x", "noise"], ace_values=None).run(model, Probe(x))
    assert len(set(r.meta["targets"])) == 2
    [(_, fig)] = tabular_maps(MapData(x, dict(r.maps), r.audit, r.meta))
    colours, label = _bars(fig)
    assert colours["x"] == to_rgba("tab:red")
    assert label == "mean |effect| (red: raises the class score)"


def test_a_column_of_nan_effects_or_inputs_has_no_direction():
    """A model that reads NaN as missing, or diverged weights: no covariance, so grey, no error."""
    x, effect = torch.randn(6, 3, generator=torch.Generator().manual_seed(3)), torch.ones(6, 3)
    effect[:, 0] = x[:, 0]
    effect[0, 1], x[2, 2] = float("nan"), float("nan")
    [(_, fig)] = tabular_maps(MapData(x, {"effect": effect}, "ie", {"outputs": 1, "feature_names": ["a", "b", "c"]}))
    colours, label = _bars(fig)
    assert colours == {"a": to_rgba("tab:red"), "b": to_rgba("tab:gray"), "c": to_rgba("tab:gray")}
    assert "grey: no direction" in label
