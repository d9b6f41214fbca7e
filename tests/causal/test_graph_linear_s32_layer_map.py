"""The layer map's captures of every layer listed the model's modules once per layer (graph_linear_s32): ``capture``
resolved each name by ``resolve_module``, which lists ``named_modules()`` and looks at every module's tensors for the
meta device, a walk over the model per layer and pass (a tenth of the CPU time of the map of a 134-layer residual CNN).
``resolve_modules`` resolves them all from one listing, with the same modules, checks and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine import module_sites
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.intervention_hooks import capture
from lightning_causal.causal.engine.module_sites import resolve_module, resolve_modules


def _deep(depth: int = 12) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*(m for _ in range(depth) for m in (nn.Linear(4, 4), nn.Tanh()))).eval()


def test_capture_of_every_layer_lists_the_modules_once(monkeypatch):
    model = _deep()
    listed = {"walks": 0}
    original = module_sites.named_modules

    def counting(m):
        listed["walks"] += 1
        return original(m)

    monkeypatch.setattr(module_sites, "named_modules", counting)
    names = [str(i) for i in range(24)]
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), capture(model, names) as got:
        model(x)
    assert listed["walks"] == 1  # was 24: one listing per name
    h = x
    for i, layer in enumerate(model):
        h = layer(h)
        assert torch.equal(got[str(i)], h)


def test_resolve_modules_gives_resolve_modules_answers_and_errors():
    model = _deep(3)
    names = ["0", "5", "2:input", "3"]
    with input_sites(model, names):
        assert {n: m for n, m in resolve_modules(model, names).items()} == {n: resolve_module(model, n) for n in names}
    for bad in ("7", "0.weight"):
        with pytest.raises(ValueError) as one:
            resolve_module(model, bad)
        with pytest.raises(ValueError) as many:
            resolve_modules(model, ["1", bad])
        assert str(many.value) == str(one.value)
    with pytest.raises(TypeError, match="one module name"):
        resolve_modules(model, ["1", 2])


def test_a_meta_skeleton_is_refused_from_the_one_listing():
    model = _deep(2)
    skeleton = nn.Linear(4, 4, device="meta")
    model.add_module("skeleton", skeleton)
    with pytest.raises(ValueError) as one:
        resolve_module(model, "skeleton")
    with pytest.raises(ValueError) as many:
        resolve_modules(model, ["0", "skeleton"])
    assert str(many.value) == str(one.value) and "meta" in str(one.value)
