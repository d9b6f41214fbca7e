"""ACE curves of a mixed tabular model (x_cont, x_cat): the groups in the integer input are set as codes.

Their quantiles were interpolated (0.92 between codes 0 and 1), run as the truncated code (0) and
reported as 0.92: the curve's values and its centring were wrong, silently.
"""

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import (
    average_causal_effect,
    interventional_expectations,
)


class Mixed(nn.Module):
    """f(x_cont, x_cat) = w·x_cont + table[x_cat]: one continuous part, one embedded code."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, -1.0]], dtype=torch.float64))
        self.table = nn.Embedding(4, 1).double()
        with torch.no_grad():
            self.table.weight.copy_(torch.tensor([[0.0], [10.0], [-3.0], [7.0]]))

    def forward(self, x_cont: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return (x_cont * self.w).sum(1, keepdim=True) + self.table(x_cat[:, 0])


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x_cont = torch.tensor([[0.1, 2.0], [1.5, -1.0], [-0.7, 0.3], [2.2, 0.0], [0.4, 1.1]], dtype=torch.float64)
    x_cat = torch.tensor([[1], [3], [2], [0], [0]])  # linear quantiles 5%..95% of these codes are fractional
    return x_cont, x_cat


MASK = (torch.tensor([[0, 1]]), torch.tensor([[2]]))


def test_code_group_quantiles_are_observed_codes_and_match_brute_force() -> None:
    model, (x_cont, x_cat) = Mixed(), _inputs()
    mu, values = interventional_expectations(model, (x_cont, x_cat), MASK, num_values=5, target=0)
    codes = values[2]
    assert torch.equal(codes, codes.round()) and set(codes.tolist()) <= {0.0, 1.0, 2.0, 3.0}
    for k, a in enumerate(codes.tolist()):  # brute force: set the code, run the model, average
        edited = torch.full_like(x_cat, int(a))
        assert mu[2, k].item() == pytest.approx(model(x_cont, edited).mean().item(), abs=1e-12)
    # the continuous groups keep linear quantiles
    levels = torch.linspace(0.05, 0.95, 5, dtype=torch.float64)
    assert torch.allclose(values[0], torch.quantile(x_cont[:, 0], levels))
    ace = average_causal_effect(model, (x_cont, x_cat), MASK, num_values=5, target=0)
    table = model.table.weight[:, 0].detach()[codes.long()]
    assert torch.allclose(ace[2], table - table.mean(), atol=1e-12)  # f = ... + table[code]: ACE of the code


def test_fractional_value_for_a_code_group_is_refused() -> None:
    model, (x_cont, x_cat) = Mixed(), _inputs()
    values = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.5]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"group 2.*integer input.*1\.5"):
        interventional_expectations(model, (x_cont, x_cat), MASK, values, target=0)
    mu, _ = interventional_expectations(model, (x_cont, x_cat), MASK, values.round(), target=0)  # whole codes run
    assert mu[2].tolist() == pytest.approx([model(x_cont, torch.full_like(x_cat, c)).mean().item() for c in (0, 2)])


class CodesFirst(nn.Module):
    """The same model with the codes first, ``model(x_cat, x_cont)``."""

    def __init__(self, inner: Mixed) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
        return self.inner(x_cont, x_cat)


def test_codes_first_give_the_same_curves() -> None:
    """The codes may come first: they were taken for token ids (a TypeError), and the grid took their dtype."""
    inner, (x_cont, x_cat) = Mixed(), _inputs()
    mu, values = interventional_expectations(inner, (x_cont, x_cat), MASK, num_values=5, target=0)
    mu_first, values_first = interventional_expectations(CodesFirst(inner), (x_cat, x_cont), (MASK[1], MASK[0]), num_values=5,
                                                         target=0)
    assert values_first.dtype == torch.float64
    torch.testing.assert_close(values_first, values)
    torch.testing.assert_close(mu_first, mu)


def test_a_code_the_embedding_cannot_look_up_is_named() -> None:
    """A value beyond the embedding's codes failed with torch's bare 'IndexError: index out of range in self'."""
    model, (x_cont, x_cat) = Mixed(), _inputs()
    values = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 5.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`values` \(column 1\).*a code in \[0, 4\).*Embedding 'table'.*got 5"):
        interventional_expectations(model, (x_cont, x_cat), MASK, values, target=0)
