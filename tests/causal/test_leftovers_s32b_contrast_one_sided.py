"""A class ruled out (``-inf``) by only one of the two models of a :class:`Contrast`: by the model, the contrast is
``-inf − finite`` = ``-inf`` (left out, as where both rule it out); by the feature-shifted copy only, it was
``finite − (-inf)`` = ``+inf``, which Neural Cleanse refused as the outputs of a diverged model, stopping
``BackdoorSuppressionTerm``'s contrastive detection. A class either model rules out is now ruled out of the contrast,
and Neural Cleanse leaves a class ruled out on every input out of its comparison (``ruled_out``), as where both do
(leftovers_s32b)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.feature_shift import Contrast
from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse


class _Masked(nn.Module):
    """A 4-class linear model of 4x4 images; ``ruled_out``'s class -inf on every input."""

    def __init__(self, ruled_out: int | None, zero: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
        if zero:
            nn.init.zeros_(self.net[1].weight), nn.init.zeros_(self.net[1].bias)
        self.ruled_out = ruled_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        if self.ruled_out is None:
            return z
        mask = torch.zeros_like(z, dtype=torch.bool)
        mask[:, self.ruled_out] = True
        return z.masked_fill(mask, float("-inf"))


@pytest.mark.parametrize("copy_rules_out", [True, False])
def test_the_contrast_of_a_class_one_model_rules_out_is_minus_inf(copy_rules_out: bool) -> None:
    plain, masked = _Masked(None, zero=True), _Masked(3, zero=True)  # logits 0: softmax 1/4 each, or 1/3 of 3 classes
    contrast = Contrast(plain, masked) if copy_rules_out else Contrast(masked, plain)
    out = contrast(torch.ones(2, 1, 4, 4))
    sign = 1.0 if copy_rules_out else -1.0  # log(1/4) − log(1/3), or its opposite
    torch.testing.assert_close(out[:, :3], torch.full((2, 3), sign * math.log(3 / 4)))
    assert out[:, 3].tolist() == [float("-inf")] * 2  # was +inf where the copy ruled it out


def test_neural_cleanse_leaves_out_a_class_the_copy_rules_out_on_every_input() -> None:
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    res = neural_cleanse(Contrast(_Masked(None), _Masked(3)), x, 4, steps=20)  # before: ValueError, 'diverged' outputs
    both = neural_cleanse(Contrast(_Masked(3), _Masked(3)), x, 4, steps=20)
    assert res.ruled_out == both.ruled_out == [3] and 3 not in res.flagged
    assert math.isnan(res.anomaly_index[3]) and math.isnan(res.norm_ratio[3])


class _Top2(nn.Module):
    """Every class but the two of largest logits ruled out with -inf."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return z.masked_fill(z < z.topk(2, 1).values[:, -1:], float("-inf"))


def test_a_sample_whose_two_models_share_no_class_is_refused_as_such_not_as_a_divergence() -> None:
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    contrast = Contrast(_Top2(0), _Top2(1))
    none = contrast(x).isneginf().all(1).nonzero().flatten().tolist()
    assert none == [7]  # the two models' top-2 classes are disjoint on sample 7 only
    with pytest.raises(ValueError, match=r"At samples \[7\] every output is -infinity: the model rules every class out "
                                         r"there \(on a Contrast, the model and its feature-shifted copy rule out") as caught:
        neural_cleanse(contrast, x, 4, steps=2)
    assert "diverged" not in str(caught.value)
