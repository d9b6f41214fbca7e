"""CaptumBaseline's opt-in reference metrics (loops4): a method's ``sensitivity_max`` and ``infidelity`` were logged
as ``captum/<method>/...``, and TensorBoard sorts tags as strings, so that section (``captum`` < ``causal``) came
before the causal scalars it is the baseline for; the method's other scalars were already under ``compare/`` (and its
cards under ``.../compare/<method>``, commit 35865bb). They are ``compare/<method>/{sensitivity_max,infidelity}``
now, in the custom-scalars chart of their metric with the causal explanation's own; a monitor on a former
``captum/...`` tag is told the new one."""

from __future__ import annotations

import types

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import AuditEarlyStopping, CausalAuditCallback
from lightning_causal.audits import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from lightning_causal.audits.drift import vector_drift
from lightning_causal.callbacks.monitoring import _check_owned, advise_lightning_monitors
from lightning_causal.reporting.layout import custom_layout
from lightning_causal.reporting.tensorboard import scalar_tags

METHODS = ("IntegratedGradients", "Saliency")


def _audit() -> CaptumBaseline:
    return CaptumBaseline(methods=METHODS, patch_size=2, top_k=2,
                          settings=CompareSettings(reference_metrics=True, n_perturb_samples=2))


def test_the_causal_scalars_sort_before_every_captum_scalar():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 3)).eval()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    result = _audit().run(model, Probe(x))
    result.scalars.update(vector_drift({k: v.flip(0) for k, v in result.vectors.items()}, result.vectors))
    tags = sorted(scalar_tags(result))
    causal = [t for t in tags if t.startswith("causal/")]
    assert tags[:len(causal)] == causal  # before: captum/IntegratedGradients/infidelity, ... came first
    for method in METHODS:
        for metric in ("sensitivity_max", "infidelity"):
            assert f"compare/{method}/{metric}" in tags and f"causal/captum_baseline/{metric}" in tags
    assert not [t for t in tags if not t.startswith(("causal/", "compare/"))]
    charts = custom_layout(tags)["causal vs captum"]  # one chart per metric: the causal series and every method's
    assert charts["infidelity"] == ["Multiline", ["^causal/[^/]+/infidelity$", "^compare/[^/]+/infidelity$"]]


def test_a_monitor_on_a_former_captum_tag_is_told_the_new_one():
    callback = CausalAuditCallback([_audit()])
    trainer = types.SimpleNamespace(callbacks=[callback, AuditEarlyStopping("captum/Saliency/infidelity")])
    with pytest.raises(MisconfigurationException, match=r"monitor 'compare/Saliency/infidelity'"):
        _check_owned("AuditEarlyStopping", "captum/Saliency/infidelity", trainer)
    lightnings = types.SimpleNamespace(callbacks=[callback, EarlyStopping("captum/Saliency/sensitivity_max")])
    with pytest.warns(UserWarning, match=r"EarlyStopping\(monitor='captum/Saliency/sensitivity_max'\).*"
                                         r"monitor 'compare/Saliency/sensitivity_max'"):
        advise_lightning_monitors(callback, lightnings)
