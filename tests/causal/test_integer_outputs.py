"""A model whose forward returns its decision (``q.argmax(1)``: a policy's actions, a classifier's classes)
gave the core estimators torch's own "mean(): could not infer output dtype" or an effect of integer
differences; the explained output must hold scores, and the estimators now say so naming ``output=``."""

import pytest
import torch
from torch import nn

from lightning_causal import causal as C


class Greedy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.q = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(x).argmax(1)


class Scores(Greedy):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(x)


class ScoresAndActions(Greedy):
    def forward(self, x: torch.Tensor):  # noqa: ANN201
        q = self.q(x)
        return q, q.argmax(1)


X = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("call", [
    lambda m, **kw: C.input_effects(m, X, **kw),
    lambda m, **kw: C.unit_effects(m, X, "q", **kw),
    lambda m, **kw: C.average_causal_effect(m, X, values=torch.tensor([0.0, 1.0]), **kw),
])
def test_an_argmax_output_is_refused_naming_output_and_the_scores_are_explained(call):
    with pytest.raises(TypeError, match=r"torch.int64 \[5\]: class indices or actions .* `output=`"):
        call(Greedy())
    with pytest.raises(TypeError, match="real-valued scores"):
        call(ScoresAndActions(), output=1)
    # output=0 explains the scores: the effects of a model returning them alone (the same seeded weights)
    torch.testing.assert_close(call(ScoresAndActions(), output=0), call(Scores()))
