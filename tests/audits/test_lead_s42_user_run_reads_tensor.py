"""A user's audit whose ``run`` reads a tensor itself keeps running when given one (e27fdcca refused every audit's
non-Probe argument, a user's own ``run(self, model, data)`` included, which ran before); the package's audits and a
user's ``run`` annotated ``Probe`` are still refused with the way out."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, Probe
from lightning_causal.audits.base import Audit, AuditResult


class _MeanOutput(Audit):
    def run(self, model, data, *, max_batch_size=None):
        xs = data if isinstance(data, torch.Tensor) else data.inputs
        with torch.no_grad():
            return AuditResult(self.name, scalars={"mean": float(model(xs).mean())})


class _ProbeOnly(Audit):
    def run(self, model, probe: Probe, *, max_batch_size=None):
        return AuditResult(self.name, scalars={"n": float(probe.inputs.shape[0])})


def _model_and_rows():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    return model, torch.randn(6, 3)


def test_a_users_unannotated_run_reads_the_tensor_it_was_given():
    model, x = _model_and_rows()
    with torch.no_grad():
        expected = float(model(x).mean())
    assert _MeanOutput().run(model, x).scalars["mean"] == expected
    assert _MeanOutput().run(model, Probe(x)).scalars["mean"] == expected


def test_the_packages_runs_and_a_run_annotated_probe_are_still_refused():
    model, x = _model_and_rows()
    with pytest.raises(TypeError, match=r"Expected argument `probe` to be a Probe .* got Tensor.*Probe\(x, y\)"):
        InputEffectAudit().run(model, x)
    with pytest.raises(TypeError, match=r"Expected argument `probe` to be a Probe .* got tuple"):
        _ProbeOnly().run(model, (x, None))
    assert _ProbeOnly().run(model, Probe(x)).scalars["n"] == 6.0


class _TensorOrProbe(Audit):
    def run(self, model, data: torch.Tensor | Probe, *, max_batch_size=None):
        xs = data if isinstance(data, torch.Tensor) else data.inputs
        return AuditResult(self.name, scalars={"n": float(xs.shape[0])})


def test_a_union_naming_another_type_reads_it_and_only_probe_alone_refuses():
    # final read A F4: a substring match on "Probe" refused a run annotated `torch.Tensor | Probe` the tensor it reads
    from lightning_causal.audits.logit_reads import _annotated_probe

    model, x = _model_and_rows()
    assert _TensorOrProbe().run(model, x).scalars["n"] == 6.0
    assert _TensorOrProbe().run(model, Probe(x)).scalars["n"] == 6.0
    for probe_alone in ("Probe", "Probe | None", "Optional[Probe]", "lightning_causal.Probe", Probe, Probe | None):
        assert _annotated_probe(probe_alone), probe_alone
    for other in ("torch.Tensor | Probe", "Tensor", "", torch.Tensor | Probe, torch.Tensor):
        assert not _annotated_probe(other), other
