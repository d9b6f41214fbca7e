"""A mixture of experts with an expert capacity drops the tokens beyond it in an expert's queue, so a sample's output
follows the samples before it in its batch. The probe check compares four rows run alone; where none of them is
dropped it passed and the estimators answered silently. Where the passes of rows alone show a model that routes (an
expert given a number of rows that follows the data), the check runs the whole probe once more in the reverse order,
which the last token of every overflowing queue runs first. A model that does not route pays no pass more, and a top-k
mixture without capacity (rows independent) passes."""

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.sample_independence import check_samples_independent


class _Capacity(nn.Module):
    """Top-1 routing to the expert of the largest of x's first ``experts`` features, ``capacity = ceil(cf * N / E)``
    tokens an expert in its queue's order, the others through the residual; ``cf=None``: no capacity."""

    def __init__(self, cf: float | None, experts: int = 2) -> None:
        super().__init__()
        self.cf, self.E = cf, experts
        self.experts = nn.ModuleList(nn.Linear(experts, experts) for _ in range(experts))
        with torch.no_grad():
            for e, lin in enumerate(self.experts):
                lin.weight.copy_(torch.eye(experts) * (e + 2.0))
                lin.bias.fill_(e + 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = x.argmax(1)
        onehot = nn.functional.one_hot(choice, self.E)
        keep = torch.ones_like(choice, dtype=torch.bool)
        if self.cf is not None:
            keep = (onehot.cumsum(0) * onehot).sum(1) - 1 < max(1, math.ceil(self.cf * x.shape[0] / self.E))
        out = x.clone()
        for e, expert in enumerate(self.experts):
            rows = ((choice == e) & keep).nonzero().flatten()
            out = out.index_add(0, rows, expert(x[rows]))  # an empty expert too: called with no rows
        return out


def _probe() -> torch.Tensor:
    # 8 rows, capacity 4 an expert of 2: expert 0 takes rows 0, 2, 3, 4, 5, 6 (rows 5 and 6 dropped), expert 1 rows 1, 7;
    # the compared rows 0, 1 (alone: one token an expert) and 4, 7 are all within their experts' capacity
    experts = [0, 1, 0, 0, 0, 0, 0, 1]
    x = torch.full((8, 2), 0.1) + torch.arange(8.0)[:, None] / 100
    x[torch.arange(8), experts] = 1.0
    return x


class _Counted(nn.Module):
    rows: list[int] = []  # the rows of each pass, on the class: the check puts the model's attributes back

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _Counted.rows.append(x.shape[0])
        return self.inner(x)


def test_capacity_whose_compared_rows_escape_is_refused_naming_capacity() -> None:
    model, x = _Capacity(cf=1.0).eval(), _probe()
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(8)])
    assert torch.equal(batch[[0, 1, 4, 7]], alone[[0, 1, 4, 7]]) and not torch.equal(batch[5], alone[5])
    with pytest.raises(ValueError, match="treat samples independently") as err:
        input_effects(model, x)
    msg = str(err.value)
    assert "probe samples [0, 2, 5, 6] run in one pass of the whole probe in the reverse order" in msg
    assert "compete for an expert's capacity" in msg and "capacity_factor=None" in msg and "max_batch_size=1" in msg
    assert "expert-choice" in msg
    # its way out, max_batch_size=1: every sample alone, one token an expert, the model without its limit
    with torch.no_grad():
        expected = input_effects(_Capacity(cf=None).eval(), x)
    torch.testing.assert_close(input_effects(model, x, max_batch_size=1), expected)


def test_model_that_does_not_route_pays_no_pass_more() -> None:
    torch.manual_seed(0)
    model = _Counted(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))).eval()
    x = torch.randn(8, 2)
    with torch.no_grad():
        out = model(x)
        _Counted.rows.clear()
        check_samples_independent(Forward(model), (x,), out, "The analysis")
    assert _Counted.rows == [2, 2]  # rows 0 and 1, rows 4 and 7: no pass of the whole probe


def test_top1_mixture_without_capacity_is_not_refused() -> None:
    model, x = _Counted(_Capacity(cf=None)).eval(), _probe()
    with torch.no_grad():
        out = model(x)
        _Counted.rows.clear()
        check_samples_independent(Forward(model), (x,), out, "The analysis")
        assert _Counted.rows == [2, 2, 8]  # it routes: the whole probe reversed, one pass more, gives its outputs
        effects = input_effects(model, x)
        loop = torch.cat([input_effects(model, x[i:i + 1]) for i in range(8)])
    torch.testing.assert_close(effects, loop)
