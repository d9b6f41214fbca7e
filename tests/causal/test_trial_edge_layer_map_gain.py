"""Trial "edge": the layer map of a model whose output ignores its inputs (a constant model, all
effects zero). The edge from a layer no intervention reaches into the output, which does not move
either, had gain inf (0/0 read as x/0); it is undefined (NaN). A gain of a model that responds is
s_target / s_source."""

import math

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


def _model(constant: bool) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()
    if constant:
        with torch.no_grad():
            model[2].weight.zero_()  # layers 2 and 4 see a constant: no input intervention reaches them
    return model


def test_a_gain_where_neither_end_responds_is_nan_not_inf():
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lm = layer_causal_map(_model(True), x, None, layers=["0", "2", "4"], threshold=1.0)  # no merging (CKA < 1, NaN for a profile of zeros)
    assert [e[:2] for e in lm.edges] == [("<input>", "0"), ("0", "2"), ("2", "4"), ("4", "<output>")]
    assert float(lm.response[0]) > 0 and float(lm.response[1]) == 0.0 and float(lm.response[2]) == 0.0
    assert lm.edge_stats[1]["gain"] == 0.0  # 0 / s_0
    assert math.isnan(lm.edge_stats[2]["gain"]) and math.isnan(lm.edge_stats[3]["gain"])  # 0 / 0: before, inf


def test_a_gain_is_the_ratio_of_the_responses():
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lm = layer_causal_map(_model(False), x, None, layers=["0", "2", "4"], threshold=1.0)
    s = [lm.edges[i][2] for i in range(4)]
    for i in (1, 2, 3):
        assert math.isclose(lm.edge_stats[i]["gain"], s[i] / s[i - 1], rel_tol=1e-12)
