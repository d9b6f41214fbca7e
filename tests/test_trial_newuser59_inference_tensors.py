"""Auditing a served model (newuser59 trial: after the fit, a bfloat16 copy audited inside ``torch.inference_mode``).

``audit_model`` converts the probe to the weights' dtype; under the caller's ``inference_mode`` that made inference
tensors, and its first check (a forward pass with autograd on) refused them: "The probe of shape [16, 4] is rejected
by the model: Inference tensors cannot be saved for backward", with advice about ``forward``'s parameters. A float32
model audited on samples made under ``inference_mode`` (serving code's features), and ``CausalAuditCallback(probe=)``
given such samples, stopped alike; the core's estimators, documented to run under ``inference_mode``, ran. The
probe's inference tensors are now copied as plain ones: the numbers are those of the same audits outside it."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CaptumBaseline,
    CausalAuditCallback,
    InputEffectAudit,
    UnitImportanceAudit,
    audit_model,
)
from lightning_causal.causal import input_effects
from lightning_causal.models import LightningClassifier

X = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))


def _net(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(dtype).eval()


def _audits() -> list:
    return [InputEffectAudit(ace_values=None), UnitImportanceAudit(["0"]), CaptumBaseline(("Saliency",))]


def _values(results) -> dict:
    return {r.audit: r.vectors for r in results}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_audit_model_of_a_half_model_under_inference_mode(dtype):
    net = _net(dtype)
    outside = _values(audit_model(net, _audits(), X, probe_size=16))
    with torch.inference_mode():
        inside = _values(audit_model(net, _audits(), X, probe_size=16))  # before: MisconfigurationException
    assert outside.keys() == inside.keys()
    for name, vectors in outside.items():
        for key, value in vectors.items():
            assert torch.equal(value, inside[name][key]), (name, key)
    # input effects as the core gives them in the model's dtype (dtype-converted probe, the same rows)
    effects = input_effects(net, X.to(dtype)).abs().mean(0)
    assert torch.equal(inside["input_effect"]["mean_abs_effect"], effects.to(inside["input_effect"]["mean_abs_effect"].dtype))


@pytest.mark.filterwarnings("ignore")
def test_samples_made_under_inference_mode(tmp_path):
    net = _net()
    with torch.inference_mode():
        served = X.clone()  # serving code's features: inference tensors
    assert served.is_inference()
    plain = _values(audit_model(net, _audits(), X, probe_size=16))
    given = _values(audit_model(net, _audits(), served, probe_size=16))  # before: "Inference tensors cannot be saved"
    for name, vectors in plain.items():
        for key, value in vectors.items():
            assert torch.equal(value, given[name][key]), (name, key)
    assert served.is_inference()  # the caller's tensor as it was

    module = LightningClassifier(_net(), lr=0.1, optimizer="sgd")
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=served, report_dir=str(tmp_path / "reports"))
    data = DataLoader(TensorDataset(X, (X[:, 0] > 0).long()), batch_size=8)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=[audit])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, data, data)  # before: the same refusal at set-up
    assert audit.audited_epochs == [0]
    effects = input_effects(module.eval(), X).abs().mean(0)
    assert torch.allclose(audit.last_results["input_effect"].vectors["mean_abs_effect"], effects)
