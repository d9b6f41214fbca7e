"""Review of 557f35cd: a trained model's ``spectral_norm`` (its power iteration converged) moves some entries of ``u``
and ``v`` by an ulp at a training pass and leaves the others, which the rule telling a memory bank by the slices a
pass changed (whatever their count, since 557f35cd) took for one: ``CausalRepairModule`` ran such a model unfused, a
term's pass iterating ``u`` once more than the task's (measured: 2.72 -> 3.01 ms a step, weights 1e-5 apart after 8
steps, /tmp/review_lo40b/sncost.py). Torch's spectral norm vectors are no memory, as the docstring said."""
import pytest
import torch
from torch import nn

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.carried_state import memory_rows_written


def _converged(style: str) -> nn.Module:
    torch.manual_seed(0)
    sn = nn.utils.parametrizations.spectral_norm if style == "parametrization" else nn.utils.spectral_norm
    model = nn.Sequential(sn(nn.Linear(16, 32)), nn.ReLU(), nn.Linear(32, 2)).train()
    with torch.no_grad():
        for _ in range(150):  # near its fixed point, as a trained model's: a pass moves some entries of u by an ulp
            model(torch.randn(4, 16))
    return model


@pytest.mark.parametrize("style", ["parametrization", "hook"])
def test_a_converged_spectral_norm_is_no_memory_bank(style):
    model = _converged(style)
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    kept = keep_attributes(model, reassigned_buffers=True, values=True)
    u = [b.clone() for n, b in model.named_buffers() if n.endswith("u")]
    model(x)
    moved = [int((a != b).sum()) for a, b in zip(u, (b for n, b in model.named_buffers() if n.endswith("u")))]
    assert 0 < moved[0] < 32  # some entries by an ulp, others not: what the rule read as slices written
    assert memory_rows_written(kept, model) == ()
    x[:, 0] = (x[:, 0] > 0).float()
    repair = CausalRepairModule(_converged(style), [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)])
    repair.training_step((x, torch.zeros(4, dtype=torch.long)), 0)
    assert repair._carried == ()  # fused from the next step, as before 557f35cd


def test_a_bank_beside_a_spectral_norm_is_still_told():
    model = _converged("parametrization")
    model.register_buffer("keys", torch.zeros(16, 2))
    kept = keep_attributes(model, reassigned_buffers=True, values=True)
    model.keys[:4] = model(torch.randn(4, 16)).detach()
    assert memory_rows_written(kept, model) == (("keys", (16, 2)),)
