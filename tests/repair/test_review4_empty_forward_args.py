"""An ``unpack_batch`` that returns an empty mapping or tuple of forward arguments (``{k: b[k] for k in
extras if k in b}`` with none present) means no arguments: BackdoorSuppressionTerm refused it ("takes no
forward arguments from the batch") and the fused pass was given up. Empty arguments now read as none."""

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.batches import unpack
from lightning_causal.causal import Trigger


@pytest.mark.parametrize("empty", [{}, ()], ids=["mapping", "tuple"])
def test_empty_forward_arguments_are_none(empty):
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 2
    assert unpack({"x": x, "y": y}, lambda b: (b["x"], b["y"], empty))[2] is None

    def objective(args):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
        mask = torch.zeros(1, 8, 8)
        mask[:, :2, :2] = 1
        term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 8, 8), 0), name="bd", distill_weight=0.0)
        module = CausalRepairModule(model, [term], unpack_batch=lambda b: (b["x"], b["y"], args))
        torch.manual_seed(1)
        out = module.objective({"x": x, "y": y})
        return out[0] if isinstance(out, tuple) else out

    torch.testing.assert_close(objective(empty), objective(None), rtol=0, atol=0)
