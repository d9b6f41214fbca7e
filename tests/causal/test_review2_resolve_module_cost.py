"""resolve_module's meta-skeleton check (c27397e) walked every parameter and buffer of each module on the
path to the site (the whole model first: 'model', then 'model.layers', ...) on every call, meta or not:
16 ms instead of 3.4 ms per call on a model of 1,800 modules, paid by every hook, capture and layer
read. A model without meta tensors is now seen as such from each module's own tensors, once. And a
container holding the skeleton beside real layers was taken for the skeleton: its real layers were
refused, and the message named the container; the skeleton is a module whose weights are all meta."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.interventions import resolve_module


def _deep() -> nn.Module:
    model = nn.Module()
    model.body = nn.Module()
    model.body.layers = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4))) for _ in range(6)])
    return model


def test_resolving_a_site_of_a_model_without_meta_tensors_walks_no_subtree(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _deep()
    walks = []
    for method in ("parameters", "buffers"):
        original = getattr(nn.Module, method)

        def counted(self, *args, _original=original, **kwargs):  # noqa: ANN001, ANN202
            walks.append(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(nn.Module, method, counted)
    assert resolve_module(model, "body.layers.3.2.0") is model.body.layers[3][2][0]
    assert walks == []


def test_a_site_inside_a_meta_skeleton_is_still_refused() -> None:
    model = _deep()
    model.body.layers[3].to("meta")  # a functional_call skeleton beside real weights
    with pytest.raises(ValueError, match="'body.layers.3' holds its weights on the meta device"):
        resolve_module(model, "body.layers.3.1")
    assert resolve_module(model, "body.layers.2.1") is model.body.layers[2][1]
    torch.nn.Module.to(model, "meta")  # meta throughout: check_not_meta's message
    with pytest.raises(ValueError, match="to hold its weights in memory"):
        resolve_module(model, "body.layers.2.1")
