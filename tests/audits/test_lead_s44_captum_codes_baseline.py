"""CaptumBaseline's refusal of a float baseline for integer inputs names a reference code for category codes, as
InputEffectAudit's does (it named token ids only: final read B44 F5)."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import CaptumBaseline, Probe


class Codes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cols = nn.ModuleList(nn.Embedding(3, 4) for _ in range(2))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.cat([emb(x[:, j]) for j, emb in enumerate(self.cols)], 1))


def test_a_float_baseline_for_codes_names_a_reference_code():
    x = torch.randint(0, 3, (16, 2), generator=torch.Generator().manual_seed(0))
    with pytest.raises((ValueError, MisconfigurationException), match="for integer codes, a reference code"):
        audit_model(Codes().eval(), [CaptumBaseline(methods=("FeatureAblation",), baseline=0.5)],
                    Probe(x, torch.zeros(16, dtype=torch.long)))
