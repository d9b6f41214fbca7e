"""An evidential classifier returns the concentrations ``alpha = evidence + 1`` of a Dirichlet:
where a softmax is applied to the output (the Sobol' analysis with ``probability=True``, the
fairness measures, Captum's perturbation curves, the repair terms) its softmax is not the expected
probability ``alpha / alpha.sum()``; ``check_logits`` warns and names ``output=lambda out: out.log()``,
which gives exactly that probability. Logits are not warned of."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.state import check_logits
from lightning_causal.causal.sensitivity.samplers import class_probability


class Evidential(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return nn.functional.softplus(self.lin(x)) + 1  # Dirichlet concentrations alpha >= 1


X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))


def test_concentrations_are_warned_of_where_a_softmax_reads_them():
    torch.manual_seed(0)
    model = Evidential()
    with pytest.warns(UserWarning, match=r"at least 1 and half its rows or more hold one below 2, as the concentrations alpha .*by the Sobol' analysis "
                                         r"\(probability=True\).*`output=lambda out: out.log\(\)`"):
        class_probability(model, target=0)(X)


def test_the_named_fix_gives_the_dirichlet_mean_without_a_warning():
    torch.manual_seed(0)
    model = Evidential()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = class_probability(model, target=0, output=lambda out: out.log())(X)
    alpha = model(X)
    torch.testing.assert_close(p, (alpha[:, 0] / alpha.sum(1)).detach())


def test_logits_and_few_rows_are_not_warned_of():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_logits(torch.tensor([[2.0, -1.0, 0.5]] * 8), "it")  # logits of both signs
        check_logits(torch.tensor([[1.5, 2.0]] * 3), "it")  # three rows: logits >= 1 by chance
        check_logits(torch.tensor([[1.5, 2.0]] * 8) - 1.75, "it")  # centred: the silencing the warning names


def test_logits_shifted_above_1_are_not_warned_of():
    """A head whose bias sits 20 above 0 (the cross-entropy never moves a row's mean logit): every logit is at least 1,
    but no row holds the concentrations' anchor, a class below 2 (evidence below one observation)."""
    logits = 3 * torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    shifted = logits + 20
    assert bool((shifted >= 1).all()) and bool((shifted.amin(1) >= 2).all())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_logits(shifted, "it")


def test_concentrations_of_a_trained_relu_evidence_head_are_warned_of():
    """Trained evidential rows: the supported class's alpha large, the others' at exactly 1 (ReLU evidence of 0)."""
    alpha = torch.ones(6, 4)
    alpha[torch.arange(6), torch.arange(6) % 4] = torch.tensor([30.0, 12.0, 25.0, 40.0, 9.0, 18.0])
    with pytest.warns(UserWarning, match=r"concentrations alpha"):
        check_logits(alpha, "it")
