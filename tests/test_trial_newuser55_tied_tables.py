"""newuser55's trial: the audits' top tables where scores tie (identical columns, dead units, ignored groups).

The tables took their rows by ``torch.topk`` or a plain ``argsort``, whose order among equal scores is
their own and changes with the vector's length: three identical columns tied at the last of the top 2
listed the second copy (the figure beside it, the first), a layer of dead units listed units 6, 5, 7 as
the top zeros, and the Sobol' table of 24 columns put the 0s of ignored columns in no order. Equal scores
now come by lower id first, as the figures draw them and as a CI gate comparing top lists needs.
"""

import torch
from torch import nn

from lightning_causal import InputEffectAudit, SobolAudit, UnitImportanceAudit
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.ranking import largest_k


def test_identical_columns_tied_at_the_last_top_row_give_the_first_copy():
    model = nn.Linear(4, 2)
    with torch.no_grad():  # class 1's logit: 0.5 (a + a_copy + a_copy2) + 2 b, the three copies equal
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 2.0, 0.5]]))
        model.bias.zero_()
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    x[:, 1] = x[:, 0]
    x[:, 3] = x[:, 0]
    audit = InputEffectAudit(feature_names=["a", "a_copy", "b", "a_copy2"], target=1, top_k=2, ace_values=None)
    result = audit.run(model, Probe(x))
    rows = result.tables["top_groups"]
    assert [row["feature"] for row in rows] == ["b", "a"]  # was ["b", "a_copy"]
    a, b = 0.5 * x[:, 0].abs().mean(), 2.0 * x[:, 2].abs().mean()  # δ_g = w_g x_g against 0, by hand
    assert abs(rows[1]["mean_abs_effect"] - float(a)) < 1e-6
    assert abs(result.scalars["top2_share"] - float((a + b) / (3 * a + b))) < 1e-6


def test_dead_units_tied_at_zero_are_listed_by_unit_id():
    model = nn.Sequential(nn.Linear(3, 20), nn.ReLU(), nn.Linear(20, 1))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[4, 0] = 1.0  # units 4 and 9 carry x_0 and x_1; the other 18 are 0 on every input
        model[0].weight[9, 1] = 1.0
        model[0].bias.zero_()
        model[2].weight.fill_(1.0)
        model[2].bias.zero_()
    x = torch.rand(16, 3, generator=torch.Generator().manual_seed(0)) + 1.0  # > 0: both units on
    rows = UnitImportanceAudit(["1"], top_k=5).run(model, Probe(x)).tables["top_units/1"]
    order = [4, 9] if x[:, 0].mean() > x[:, 1].mean() else [9, 4]  # importance of unit 4: mean x_0 (do(h := 0))
    assert [row["unit"] for row in rows] == [*order, 0, 1, 2]
    assert [row["importance"] for row in rows[2:]] == [0.0, 0.0, 0.0]


def test_sobol_groups_the_model_ignores_come_by_group_id():
    model = nn.Linear(24, 2)
    with torch.no_grad():  # class 1 reads columns 10 and 12 only
        model.weight.zero_()
        model.weight[1, 10], model.weight[1, 12] = 1.0, 3.0
        model.bias.zero_()
    x = torch.randn(64, 24, generator=torch.Generator().manual_seed(0))
    rows = SobolAudit(n=256, target=1).run(model, Probe(x)).tables["indices"]
    assert [row["group"] for row in rows[:2]] == [12, 10]
    assert [row["group"] for row in rows[2:]] == [g for g in range(24) if g not in (10, 12)]
    assert all(row["ST"] == 0.0 for row in rows[2:])


def test_largest_k_keeps_the_lower_index_first():
    values, indices = largest_k(torch.zeros(20), 3)  # torch.zeros(20).topk(3): its own order
    assert indices.tolist() == [0, 1, 2] and values.tolist() == [0.0, 0.0, 0.0]
    assert largest_k(torch.tensor([1.0, 3.0, 1.0, 3.0]))[1].tolist() == [1, 3, 0, 2]
