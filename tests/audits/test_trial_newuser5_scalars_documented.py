"""Every scalar an audit logs is named in its docstring (the reference a user reads for a tag).

A Conv1d classifier's text card read ``layer_map ... n_layers 3, output_response 0.0627`` and
``unit_importance: conv1/top1_importance 2.06``: neither ``LayerMapAudit``'s docstring nor
docs/methods.md said what ``n_layers`` and ``output_response`` are, nor ``UnitImportanceAudit``'s
what ``<layer>/top1_importance`` is. The check names a scalar by its last part, with the numbers of
``top<k>_share`` and ``group_<g>`` as the docstrings write them, and checks the values against a
brute-force float64 computation where the docstring now defines them."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    CaptumBaseline,
    CausalGraphAudit,
    CounterfactualAudit,
    FairnessAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.causal import AttributeFlip


def _model_and_probe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double().eval()
    x = torch.randn(40, 4, dtype=torch.float64)
    x[:, 0] = (x[:, 0] > 0).double()  # a binary column for the fairness flip
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:5] = 1 - y[:5]  # misclassified samples for the counterfactuals
    return model, Probe(x, y)


def _documented_name(key: str) -> str:
    last = key.split("/")[-1]
    return re.sub(r"^group_\d+$", "group_<g>", re.sub(r"^top\d+_share$", "top{k}_share", last))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("audit", [
    InputEffectAudit(), UnitImportanceAudit(["1"]), CaptumBaseline(), SobolAudit(n=128), CausalGraphAudit(["1"], stability_resamples=0),
    LayerMapAudit(), CounterfactualAudit(), FairnessAudit(AttributeFlip(0), layers=["1"]),
], ids=lambda a: type(a).__name__)
def test_every_scalar_is_named_in_the_audits_docstring(audit):
    model, probe = _model_and_probe()
    result = audit.run(model, probe)
    doc = type(audit).__doc__
    missing = sorted({_documented_name(k) for k in result.scalars} - {n for n in map(_documented_name, result.scalars) if n in doc})
    assert not missing, f"{type(audit).__name__} logs scalars its docstring does not name: {missing}"


def test_the_newly_documented_scalars_are_what_the_docstrings_say():
    model, probe = _model_and_probe()
    x = probe.inputs
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1)
        f = out.gather(1, t[:, None])[:, 0]
        # n_layers: the layers mapped (the default: the leaves with parameters, "0" and "2");
        # output_response: E|f_t(x) - f_t(x | do(x_g := 0))| / E|f_t(x)| over every (group, sample) row
        effects = torch.stack([f - model(x.index_fill(1, torch.tensor([g]), 0.0)).gather(1, t[:, None])[:, 0] for g in range(4)], 1)
        # top1_importance: the largest unit importance E_x|f_t(x) - f_t(x | do(h_u := 0))| of the layer
        h = model[1](model[0](x))
        importance = torch.stack([(f - model[2](h.index_fill(1, torch.tensor([u]), 0.0)).gather(1, t[:, None])[:, 0]).abs().mean()
                                  for u in range(8)])
    lm = LayerMapAudit().run(model, probe).scalars
    assert lm["n_layers"] == 2.0
    assert lm["output_response"] == pytest.approx(float(effects.abs().mean() / f.abs().mean()), rel=1e-9)
    units = UnitImportanceAudit(["1"]).run(model, probe).scalars
    assert units["1/top1_importance"] == pytest.approx(float(importance.max()), rel=1e-9)
