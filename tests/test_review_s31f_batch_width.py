"""A model whose output width follows its batch (an in-batch sampled-softmax score matrix ``u @ v.T``, ``[B, B]``)
failed input_effects with "index 1 is out of bounds" (two samples: the passes of one row give ``[1, 1]``) or with the
clean check's "max |difference| nan" and a cause it does not have (control flow, normalisation); it is now refused
naming the cause (the output's width follows the batch) and the way out, which gives each row's own score."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.forward import Forward


class InBatch(nn.Module):
    """Row i scores every item of its batch: ``u(x_i) . v(x_j)`` for every j."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.u, self.v = nn.Linear(4, 8), nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.u(x) @ self.v(x).T


@pytest.mark.parametrize("samples", [2, 6])
def test_an_output_whose_width_follows_the_batch_is_refused_by_name(samples):
    model, x = InBatch(), torch.randn(samples, 4, generator=torch.Generator().manual_seed(1))
    for run in [lambda: input_effects(model, x, target=torch.arange(samples)), lambda: unit_effects(model, x, "u")]:
        with pytest.raises(ValueError, match=r"the output's width follows the batch \(batch-coupled") as caught:
            run()
        assert "columns and one of" in str(caught.value) and "output=lambda s: s.diagonal()[:, None]" in str(caught.value)


def test_the_way_out_gives_each_rows_own_score():
    # zeroing feature j of sample i moves its own score u(x_i) . v(x_i) by the hand difference
    model, x = InBatch(), torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    effects = input_effects(model, x, output=lambda s: s.diagonal()[:, None])

    def own(z: torch.Tensor) -> torch.Tensor:
        return (model.u(z) * model.v(z)).sum(1)

    with torch.no_grad():
        expected = torch.stack([own(x) - own(x * (torch.arange(4) != j)) for j in range(4)], 1)
    assert torch.allclose(effects, expected, atol=1e-6)


def test_a_head_grown_to_as_many_classes_as_a_later_pass_has_rows_is_not_refused():
    # one Forward for a whole fit (BackdoorSuppressionTerm keeps one per model): a set-up pass of 2 rows on 2 classes,
    # steps of 16 rows on 2 classes, then the head grows to 4 classes and a partial batch has 4 rows
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 2)), torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    forward = Forward(model)
    assert forward(x[:2]).shape == (2, 2) and forward(x).shape == (16, 2)
    model[1] = nn.Linear(8, 4)  # the head grown to 4 classes (class-incremental)
    with torch.no_grad():
        assert torch.equal(forward(x[:4]), model[1](model[0](x[:4])))
    # the in-batch model stays refused at its second pass, whatever its sizes
    inbatch = Forward(InBatch())
    inbatch(x[:2, :4])
    with pytest.raises(ValueError, match=r"a pass of 2 rows gave 2 columns and one of 5 rows 5 columns"):
        inbatch(x[:5, :4])
