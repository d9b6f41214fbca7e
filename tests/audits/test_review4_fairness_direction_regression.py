"""FairnessAudit on a multi-output regression whose outputs have unit norm (a heading (cos, sin),
trained with nn.MSELoss, float labels) refused it as an "embedding" at set-up; the other audits
(CounterfactualAudit, the predicted-class warning) read such labels as a regression first. It now gets
the regression warning (cf_gap is no change of the output; no label metrics), as any regression does."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit
from lightning_causal.audits.base import Probe


class Heading(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 2)
        self.loss = nn.MSELoss()

    def forward(self, x):
        return F.normalize(self.fc(x), dim=1)


def test_unit_norm_regression_is_warned_about_as_a_regression_not_refused_as_an_embedding():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 4, generator=g)
    x[:, 0] = (torch.arange(12) % 2).float()
    angle = torch.rand(12, generator=g) * 6.0
    probe = Probe(x, torch.stack([angle.cos(), angle.sin()], 1))
    audit = FairnessAudit(AttributeFlip(0), compare="probability")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.validate(Heading().eval(), probe)
        result = audit.run(Heading().eval(), probe)
    assert any("regression target" in str(w.message) for w in caught)
    assert not any(k.startswith(("tpr", "fpr", "accuracy", "equalized")) for k in result.scalars)
