"""A capsule network that returns its class capsules ``[N, 10, 16]`` (squashed vectors, Sabour et al. 2017) was
refused with the per-position advice only: ``output=lambda out: out.mean(1)`` "for per-position scores [N, T, C]",
which read the 10 class capsules as 10 steps and averaged the classes away (an output [N, 16]). The refusal now
leads, for squashed vectors (every norm below 1), with the capsules' lengths, ``out.norm(dim=-1)``; the advice
followed literally equals the effects of the same network returning its lengths."""

import re

import pytest
import torch
from torch import nn

from lightning_causal import input_effects


def _squash(s: torch.Tensor) -> torch.Tensor:
    n2 = (s * s).sum(-1, keepdim=True)
    return n2 / (1 + n2) * s / torch.sqrt(n2 + 1e-8)


class Caps(nn.Module):
    def __init__(self, lengths: bool = False) -> None:
        super().__init__()
        self.fc, self.lengths = nn.Linear(16, 3 * 4), lengths

    def forward(self, x):
        v = _squash(self.fc(x).view(len(x), 3, 4))  # 3 class capsules of 4 components
        return v.norm(dim=-1) if self.lengths else v


def _message(model, x) -> str:
    with pytest.raises(ValueError, match=r"\[N\] or \[N, classes\]") as err:
        input_effects(model, x)
    return str(err.value)


def test_class_capsules_are_refused_with_their_lengths_first_and_the_advice_equals_the_lengths_model():
    torch.manual_seed(0)
    model, x = Caps().eval(), torch.randn(6, 16)
    message = _message(model, x)
    advice = re.findall(r"`output=(lambda out: [^`]*)`", message)
    assert advice[0] == "lambda out: out.norm(dim=-1)", advice  # the capsules' lengths, before the per-position advice
    followed = input_effects(model, x, output=eval(advice[0]))
    lengths_model = Caps(lengths=True).eval()
    lengths_model.load_state_dict(model.state_dict())
    torch.testing.assert_close(followed, input_effects(lengths_model, x), rtol=0, atol=0)
    assert followed.shape == (6, 16)


def test_per_position_scores_keep_the_per_position_advice_first():
    torch.manual_seed(0)

    class PerPosition(nn.Module):  # [N, T, C] logits, spread beyond norm 1
        def forward(self, x):
            return 4 * x.view(len(x), 4, 4)
    message = _message(PerPosition(), torch.randn(6, 16))
    assert re.findall(r"`output=(lambda out: [^`]*)`", message)[0] == "lambda out: out.mean(1)"
    assert "out.norm(dim=-1)" in message  # the capsule case still named, after it
