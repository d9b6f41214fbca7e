"""An audit of your own that runs a quantization-aware model (``prepare_qat``) itself, inside the callback's
``no_trace`` (review of newuser43's QAT mend, ef4e040e, which switched the observers off in ``audit_mode`` only)."""

from __future__ import annotations

import copy

import torch

from lightning_causal.callbacks._no_trace import no_trace
from tests.helpers.quantization import qat_mlp


def test_an_audit_of_your_own_runs_a_qat_model_on_the_scales_it_holds():
    import torch.ao.quantization as tq

    model = qat_mlp(4)  # a training step's forward: ranges set
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=g) * 4  # wider than the ranges held: an observer on would widen them
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = copy.deepcopy(model).eval().apply(tq.disable_observer)
    with no_trace(model), torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(6)])  # before: each row's scales those of the rows before it
    torch.testing.assert_close(alone, batch, rtol=0, atol=0)
    with torch.no_grad():
        expected = reference(x)  # the model on the scales it held
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)
    after = model.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []  # observer_enabled back to 1 too
    assert model.training
