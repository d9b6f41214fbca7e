"""Review of 8e37accf: a dict attribute the model writes tensors into in ``forward`` was put back after an audit only
where it is a ``dict`` or ``OrderedDict`` written into in place: a forward that replaces it (``self.cache = {"W": w}``)
or a ``collections.defaultdict`` cache was left holding the audit's last pass, as before 8e37accf."""

from __future__ import annotations

import warnings
from collections import defaultdict

import torch
from torch import nn

from lightning_causal import UnitImportanceAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.state import audit_mode


class _Hyper(nn.Module):
    """A hypernetwork keeping its produced weights for inspection: replaced (``self.cache = {...}``) or written
    into a ``defaultdict``."""

    def __init__(self, replace: bool) -> None:
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))
        self.replace = replace
        self.cache: dict[str, torch.Tensor] = {} if replace else defaultdict(lambda: torch.zeros(1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.hyper(x[:, :3])
        if self.replace:
            self.cache = {"W": w.detach()}
        else:
            self.cache["W"] = w.detach()
        return (w * x[:, 3:]).sum(1, keepdim=True)


def _audited(replace: bool) -> tuple[_Hyper, dict[str, torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model = _Hyper(replace).eval()
    x = torch.randn(12, 7)
    with torch.no_grad():
        model(x[:5])
    cache, kept = model.cache, model.cache["W"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [UnitImportanceAudit(["hyper.1"], unit_dim=-1)], Probe(x, torch.zeros(12, dtype=torch.long)),
                    probe_size=12)
    return model, cache, kept


def test_an_audit_puts_back_a_dict_the_model_replaces() -> None:
    model, cache, kept = _audited(replace=True)
    assert model.cache is cache and model.cache["W"] is kept and kept.shape == (5, 4)


def test_an_audit_puts_back_the_items_of_a_defaultdict() -> None:
    model, cache, kept = _audited(replace=False)
    assert model.cache is cache and type(model.cache) is defaultdict
    assert list(model.cache) == ["W"] and model.cache["W"] is kept and kept.shape == (5, 4)


def test_audit_mode_removes_a_dict_first_set_inside() -> None:
    model = _Hyper(replace=True).eval()
    del model.cache
    with audit_mode(model):
        model(torch.randn(3, 7))
    assert not hasattr(model, "cache")


class _PerLayer(nn.Module):
    """A model keeping each layer's output in a dict per layer: ``self.cache["enc"]["h"] = h``."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head = nn.Linear(3, 4), nn.Linear(4, 1)
        self.cache: dict[str, dict[str, torch.Tensor]] = {"enc": {}, "head": {}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(x)
        self.cache["enc"]["h"] = h.detach()
        y = self.head(h)
        self.cache["head"] = {"y": y.detach()}  # a nested dict replaced
        return y


def test_an_audit_puts_back_the_items_of_nested_dicts() -> None:
    torch.manual_seed(0)
    model = _PerLayer().eval()
    x = torch.randn(12, 3)
    with torch.no_grad():
        model(x[:5])
    enc, head, h, y = model.cache["enc"], model.cache["head"], model.cache["enc"]["h"], model.cache["head"]["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [UnitImportanceAudit(["enc"])], Probe(x, torch.zeros(12, dtype=torch.long)), probe_size=12)
    assert model.cache["enc"] is enc and model.cache["head"] is head
    assert model.cache["enc"]["h"] is h and model.cache["head"]["y"] is y and h.shape == (5, 4)
