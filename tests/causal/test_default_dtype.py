"""The default dtype is the user's: results must not depend on ``torch.set_default_dtype``
(with float64 as default, ``input_effects`` crashed in a scatter and the quantile grid of
``average_causal_effect`` in ``torch.quantile``)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import average_causal_effect, input_effects, patch_mask


@contextlib.contextmanager
def default_dtype(dtype):
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _model_and_inputs():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)).double().eval()
    return model, torch.rand(5, 1, 4, 4, generator=g, dtype=torch.float64)


def test_input_effects_and_aces_do_not_depend_on_the_default_dtype():
    model, x = _model_and_inputs()
    mask = patch_mask((1, 4, 4), 2)
    ref = input_effects(model, x, mask), average_causal_effect(model, x, mask, "quantiles")
    with default_dtype(torch.float64):
        got = input_effects(model, x, mask), average_causal_effect(model, x, mask, "quantiles")
        audit = InputEffectAudit(patch_size=2).run(model, Probe(x))
    for a, b in zip(ref, got):
        assert torch.equal(a, b)
    with torch.no_grad():
        brute = torch.stack([model(x).gather(1, model(x).argmax(1, keepdim=True))[:, 0]
                             - model(x.masked_fill((mask == k).expand_as(x), 0.0)).gather(1, model(x).argmax(1, keepdim=True))[:, 0]
                             for k in range(4)], 1)
    torch.testing.assert_close(got[0], brute, atol=1e-12, rtol=0)
    assert audit.scalars["mean_abs_effect"] == pytest.approx(float(brute.abs().mean()), abs=1e-12)
