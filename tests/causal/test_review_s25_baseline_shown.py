"""A refused tensor baseline is shown by its dtype and shape wherever a baseline is refused (``shown_baseline``):
b704777 did so for uint8 pixels and int8/int16 samples only, and CaptumBaseline's mask message had its own copy of
the rule, while the token ids' and bool masks' refusals printed the tensor's repr, several lines cut at 80
characters mid-number ("tensor([[0.5000, 0.5000, ...],\\n        [0.5000, 0.500: the cast ...")."""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.ablation import check_baselines


@pytest.mark.parametrize(("dtype", "words"), [
    (torch.long, "an integer (a token id) for integer inputs of dtype torch.int64 but got a torch.float32 tensor [2, 5]: for token ids"),
    (torch.bool, "False or True (0 or 1) for bool inputs (masks) but got a torch.float32 tensor [2, 5]: the cast to bool"),
    (torch.uint8, "for inputs of dtype torch.uint8 but got a torch.float32 tensor [2, 5]: for uint8 images"),
])
def test_a_refused_tensor_baseline_is_shown_by_dtype_and_shape(dtype, words):
    with pytest.raises(ValueError) as err:
        check_baselines((torch.zeros(2, 5, dtype=dtype),), torch.full((2, 5), 0.5))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_captum_baseline_shows_a_token_baseline_tensor_so_too():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(20, 2)).eval()
    with pytest.raises(ValueError) as err:
        CaptumBaseline(("FeatureAblation",), baseline=torch.full((1, 5), 0.5), target=1).run(model, Probe(torch.zeros(4, 5, dtype=torch.long)))
    assert "token inputs but got a torch.float32 tensor [1, 5]: " in str(err.value) and "\n" not in str(err.value)
