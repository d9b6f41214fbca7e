"""Models that write to activations in place (``ReLU(inplace=True)``, as torchvision's ResNets do)
give what the same model with out-of-place ReLUs gives: recorded activations are copies, and the
values the estimators put into the model are the model's to overwrite."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    MeanOf,
    Zero,
    capture,
    causal_graph,
    input_effects,
    intervene,
    layer_causal_map,
    unit_effects,
)


def _pair():
    torch.manual_seed(0)
    inplace = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 36, 8),
                            nn.ReLU(inplace=True), nn.Linear(8, 3)).eval()
    plain = nn.Sequential(inplace[0], nn.ReLU(), inplace[2], inplace[3], nn.ReLU(), inplace[5]).eval()  # shared weights
    return inplace, plain, torch.randn(40, 1, 8, 8)


def test_capture_records_the_output_before_a_later_in_place_op():
    inplace, _, x = _pair()
    with torch.no_grad(), capture(inplace, ["0"]) as acts:
        inplace(x)
    assert (acts["0"] < 0).any() and torch.equal(acts["0"], inplace[0](x))  # not the ReLU'd tensor


def test_estimators_agree_with_the_out_of_place_model():
    inplace, plain, x = _pair()
    with torch.no_grad(), capture(plain, ["0"]) as acts:
        plain(x)
    reference = acts["0"]
    for kwargs in ({}, {"intervention": MeanOf(reference)}):
        torch.testing.assert_close(unit_effects(inplace, x, "0", **kwargs), unit_effects(plain, x, "0", **kwargs))
    torch.testing.assert_close(input_effects(inplace, x), input_effects(plain, x))
    g_in, g_plain = (causal_graph(m, x, ["0", "3"], baseline="mean") for m in (inplace, plain))  # mean-ablation hooks broadcast
    assert g_in.edges == g_plain.edges and g_in.meta["faithfulness"] == pytest.approx(g_plain.meta["faithfulness"])
    m_in, m_plain = (layer_causal_map(m, x, layers=["0", "3"]) for m in (inplace, plain))
    torch.testing.assert_close(m_in.cka, m_plain.cka)
    assert m_in.edges == m_plain.edges and m_in.response == pytest.approx(m_plain.response)


def test_an_intervened_value_is_not_written_through():
    inplace, plain, x = _pair()
    value = torch.full((1, 4, 6, 6), -1.0).expand(40, 4, 6, 6)  # a broadcast view: an in-place write would fail

    class Fixed(Zero):
        def __call__(self, h):
            return value

    with torch.no_grad(), intervene(inplace, {"0": Fixed()}):
        out = inplace(x)
    assert (value == -1.0).all() and torch.equal(out, plain[5](plain[4](plain[3](plain[2](torch.zeros(40, 4, 6, 6))))))
