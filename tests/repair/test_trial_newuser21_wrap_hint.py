"""``CausalRepairModule.wrap(module, terms)`` holds the wrapped ``LightningModule`` as ``.model`` and calls its
hooks, ``log`` and steps; the class now says so (``model: LightningModule``), where it inherited ``nn.Module``'s
view and mypy flagged each delegation in ``repair/wrap.py`` (12 errors, e.g. ``_logs_through(self.model, self)``)."""

from __future__ import annotations

import typing

from lightning.pytorch import LightningModule

from lightning_causal.causal import AttributeFlip
from lightning_causal.models import MLP, LightningClassifier
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.repair.wrap import _WrappedRepairModule


def test_wrap_holds_the_lightning_module_its_hint_names():
    assert typing.get_type_hints(_WrappedRepairModule)["model"] is LightningModule
    inner = LightningClassifier(MLP(4, hidden=(8,), out_features=2))
    repair = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0))])
    assert isinstance(repair, _WrappedRepairModule) and repair.model is inner
