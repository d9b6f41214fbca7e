"""The refusal of an in-batch score matrix [B, B] (a two-tower model trained with in-batch negatives) named
`mark_whole` without where to import it from and `output=lambda s: s.log_softmax(1)` without a target: followed as
written, `target=None` explains each query's best-scoring candidate, not its own item (newuser79's trial)."""

import importlib
import re

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.query, self.item = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, q, d):
        return self.query(q) @ self.item(d).T  # [B, B]: row i scores every item of its batch


def test_the_width_refusal_names_the_import_and_each_rows_own_target():
    q, d = torch.randn(6, 4), torch.randn(6, 4)
    with pytest.raises(ValueError, match="the output's width follows the batch") as err:
        input_effects(TwoTower(), q, additional_forward_args=(d,))
    said = str(err.value)
    module, name = re.search(r"`from ([\w.]+) import (\w+)`", said).groups()
    assert name == "mark_whole" and hasattr(importlib.import_module(module), name)
    assert "target=torch.arange(N)" in said
