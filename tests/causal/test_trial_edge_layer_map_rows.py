"""Trial "edge": the layer map of too few intervention rows (input groups x samples). Every centred
Gram matrix of 2 rows is [[a, -a], [-a, a]], so the CKA of any two layers was 1 and every layer
merged into one node (a one-sample probe of two features, or two samples of one group), silently;
with 1 row the CKA was NaN without a word. Both now warn, leave the CKA undefined and merge nothing.
Three rows tell layers apart."""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.causal import layer_causal_map


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)).double().eval()


@pytest.mark.parametrize(("n", "mask"), [(2, torch.zeros(1, 3, dtype=torch.long)), (1, torch.tensor([[0, 0, 1]])),
                                         (1, torch.zeros(1, 3, dtype=torch.long))], ids=["2x1", "1x2", "1x1"])
def test_fewer_than_three_rows_merge_nothing_and_warn(n, mask):
    x = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match=r"CKA of their responses over \d distinct intervention row"):
        lm = layer_causal_map(_model(), x, mask, layers=["0", "2", "4"])
    assert all(math.isnan(v) for v in lm.cka.flatten().tolist())
    assert [v for k, v in lm.nodes.items() if not k.startswith("<")] == [["0"], ["2"], ["4"]]  # before: one node 0..4


def test_copies_of_one_sample_count_once():
    # before: 5 copies of one sample with two groups gave 10 rows of 2 distinct profiles: every CKA 1, one node
    x = torch.randn(1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).expand(5, 3)
    with pytest.warns(UserWarning, match=r"over 2 distinct intervention row\(s\) \(input groups x distinct samples, 2 x 1\)"):
        lm = layer_causal_map(_model(), x, torch.tensor([[0, 0, 1]]), layers=["0", "2", "4"])
    assert len([k for k in lm.nodes if not k.startswith("<")]) == 3


def test_three_rows_compare_layers_and_say_nothing():
    x = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="layer_causal_map compares", category=UserWarning)
        lm = layer_causal_map(_model(), x, torch.zeros(1, 3, dtype=torch.long), layers=["0", "2", "4"])
    assert torch.isfinite(lm.cka).all() and float(lm.cka[0, 2]) < 0.99


def test_the_audits_dry_run_on_two_samples_does_not_warn_for_the_whole_probe():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    audit = LayerMapAudit(feature_mask=torch.zeros(1, 3, dtype=torch.long))  # 2 rows in the dry run, 6 in the audit
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="layer_causal_map compares", category=UserWarning)
        audit.dry_run(_model().float(), Probe(x))
        audit.run(_model().float(), Probe(x))


def test_inputs_that_require_grad_give_the_same_map_without_a_torch_warning():
    # before: torch's "Converting a tensor with requires_grad=True to a scalar" from the input response
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    plain = layer_causal_map(_model(), x, None, layers=["0", "2"])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*requires_grad", category=UserWarning)
        grad = layer_causal_map(_model(), x.clone().requires_grad_(), None, layers=["0", "2"])
    assert grad.meta["input_response"] == plain.meta["input_response"] and torch.equal(grad.response, plain.response)


def test_max_rows_of_two_is_refused():
    # before: accepted (minimum 2), and every CKA of two rows is 1: all layers merged
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"`max_rows` to be .*>= 3"):
        layer_causal_map(_model(), x, None, max_rows=2)
    with pytest.raises(ValueError, match=r"`max_rows` to be .*>= 3"):
        LayerMapAudit(max_rows=2)
    assert layer_causal_map(_model(), x, None, layers=["0", "2"], max_rows=3).cka.shape == (2, 2)
