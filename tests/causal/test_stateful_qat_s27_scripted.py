"""Scripted models (``torch.jit.script``) in ``audit_mode``: a buffer's restore read ``m._buffers.get(name)``, which a
scripted module's ``_buffers`` (torch.jit's ``OrderedDictWrapper``) lacks, so any audit of a scripted model with buffers
(a BatchNorm in eval mode, a scripted QAT model) failed with ``AttributeError``; and ``is_fake_quant`` tested the class
``FakeQuantizeBase``, which a scripted fake-quant module is not, so a scripted QAT model's observers stayed on inside
the audits (each pass moving the scales it quantizes with)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.ao.quantization as tq
from torch import nn
from torch.ao.quantization.quantize_fx import prepare_qat_fx

from lightning_causal import input_effects
from lightning_causal.causal.engine.state import audit_mode, is_fake_quant


def _bn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model(torch.randn(8, 3))  # running statistics of their own
    return model.eval()


def test_an_audit_of_a_scripted_model_with_buffers_runs_and_equals_the_eager_models() -> None:
    eager = _bn()
    scripted = torch.jit.script(eager)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    got = input_effects(scripted, x, target=1)  # before: AttributeError: 'OrderedDictWrapper' object has no attribute 'get'
    torch.testing.assert_close(got, input_effects(eager, x, target=1), rtol=0, atol=1e-6)


def _qat() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = prepare_qat_fx(model, tq.get_default_qat_qconfig_mapping("fbgemm"), (torch.randn(2, 3),))
    model(torch.randn(16, 3))  # the observers take ranges of their own
    return model


@pytest.mark.filterwarnings("ignore:The TorchScript type system:UserWarning")  # torch's, scripting the fake quants
def test_a_scripted_qat_models_fake_quants_are_found_and_its_observers_off_inside_an_audit() -> None:
    eager = _qat()
    scripted = torch.jit.script(eager)
    found = [m for m in scripted.modules() if is_fake_quant(m)]
    assert len(found) == sum(is_fake_quant(m) for m in eager.modules()) == 5  # before: 0 of the scripted model's
    before = {k: v.clone() for k, v in scripted.state_dict().items()}
    with audit_mode(scripted):
        assert [int(m.observer_enabled) for m in found] == [0] * 5
        wide = scripted(torch.randn(6, 3, generator=torch.Generator().manual_seed(2)) * 100)  # would widen the ranges
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
        alone, beside = scripted(x[:2]), scripted(torch.cat([x[:2], wide.new_full((2, 3), 50.0)]))[:2]
        torch.testing.assert_close(alone, beside, rtol=0, atol=0)  # the scales it holds: a row's output its own
    assert [int(m.observer_enabled) for m in found] == [1] * 5
    for k, v in scripted.state_dict().items():
        assert torch.equal(v, before[k]), k
