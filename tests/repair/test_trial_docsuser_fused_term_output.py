"""Docs trial: a fairness term's own ``output=`` inside ``CausalRepairModule``.

docs/your_model.md ("Multi-label classifiers", "Repair") gives a multi-label model one
``CounterfactualFairnessTerm(flip, output=lambda out, k=k: out[:, [k]])`` per label. With a flipped
binary column the module evaluated the counterfactuals in the task loss's forward pass (fused) and
handed every term the module's outputs, all K logits: the term's ``output=`` was ignored, each
per-label term compared the softmax over the K logits (penalty 0 for a flip moving every label
alike) and warned that it did.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm
from tests.helpers.dense_outputs import multi_label_linear


def test_per_label_terms_in_the_module_compare_each_labels_sigmoid():
    model, x, labels = multi_label_linear()
    terms = [CounterfactualFairnessTerm(AttributeFlip(0), output=lambda out, k=k: out[:, [k]], name=f"fair_label{k}")
             for k in range(3)]
    module = CausalRepairModule(model, terms, task_loss=F.binary_cross_entropy_with_logits)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, logs = module.objective((x, labels))
    assert not [str(w.message) for w in record if "multi-hot" in str(w.message)]
    z = model(x).detach()
    z_cf = z + torch.where(x[:, :1] == 0, 2.0, -2.0)  # the flip's exact effect on every logit
    for k in range(3):
        hand = (torch.sigmoid(z_cf[:, k]) - torch.sigmoid(z[:, k])).abs().mean()
        assert float(logs[f"repair/fair_label{k}"]) == pytest.approx(float(hand), rel=1e-9)
    assert float(logs["repair/task_loss"]) == pytest.approx(float(F.binary_cross_entropy_with_logits(z, labels)), rel=1e-12)


class _TupleNet(nn.Module):
    """Returns (logits, an auxiliary scalar): the module's ``output=0`` picks the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3).double()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.lin(x)
        return z, z.sum()


@pytest.mark.parametrize("fuse_forward", [True, False])
def test_a_term_without_output_explains_the_modules_output_fused_or_not(fuse_forward):
    """A term without ``output=`` got the module's ``output=0`` on the fused pass but the model's
    tuple on its own pass (``fuse_forward=False``, a BatchNorm in training, a callable
    counterfactual), where it failed with 'Expected the model to return a tensor ... got tuple'."""
    torch.manual_seed(0)
    model, (_, x, _) = _TupleNet(), multi_label_linear()
    y = torch.arange(16) % 3
    term = CounterfactualFairnessTerm(AttributeFlip(0), distance="logit")
    module = CausalRepairModule(model, [term], task_loss=F.cross_entropy, output=0, fuse_forward=fuse_forward)
    _, logs = module.objective((x, y))
    z = model(x)[0].detach()
    z_cf = model(torch.cat([1 - x[:, :1], x[:, 1:]], 1))[0].detach()
    d = (z_cf - z) - (z_cf - z).mean(1, keepdim=True)  # counterfactual logit pairing: centred logits
    assert float(logs["repair/counterfactual_fairness"]) == pytest.approx(float(d.abs().sum(1).mean()), rel=1e-9)
