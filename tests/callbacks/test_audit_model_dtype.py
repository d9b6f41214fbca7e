"""audit_model on a model whose weights are float64 (a "64-true" fit's checkpoint, model.double()) refused float32
data with a dtype error, where the fit's precision plugin converts its batches and the callback its probe (the
review of the change found it): the probe's floating inputs now take the weights' dtype."""

from __future__ import annotations

import torch

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit, Probe


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def test_float32_data_is_audited_in_the_weights_dtype():
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8,))
    got = audit_model(_model(), InputEffectAudit(ace_values=None), (x, y), probe_size=8)[0]
    want = InputEffectAudit(ace_values=None).run(_model(), Probe(x.double(), y))  # by hand, in float64
    assert torch.equal(got.vectors["mean_abs_effect"], want.vectors["mean_abs_effect"])
    assert got.vectors["mean_abs_effect"].dtype == torch.float64


def test_a_model_of_several_weight_dtypes_gets_its_data_as_given():
    model = _model()
    model[2].float()  # float64 and float32 weights: no one dtype to convert to
    x = torch.randn(8, 3, dtype=torch.float64)
    got = audit_model(torch.nn.Sequential(model[0], model[1], _Float(), model[2]), InputEffectAudit(ace_values=None), x,
                      probe_size=8)[0]
    assert torch.isfinite(got.vectors["mean_abs_effect"]).all()


class _Float(torch.nn.Module):
    def forward(self, h):
        return h.float()
