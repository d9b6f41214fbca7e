"""Review of 07307299's trial (newuser50, found and left): a dict attribute the model writes into in ``forward``
(``self.cache["W"] = w``, a hypernetwork's produced weights kept for inspection) was left holding the audit's last
pass (``[16, 10]`` of its intervened rows where the model's own pass had kept ``[5, 10]``): ``keep_attributes`` passed
dicts by, as their identity does not change. Audits leave the model's state as they found it."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import UnitImportanceAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.state import audit_mode


class _Hyper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))
        self.cache: dict[str, torch.Tensor] = {}
        self.config = {"scale": 2.0}  # a dict without tensors: left as it is

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.hyper(x[:, :3])
        self.cache["W"] = w.detach()
        return (w * x[:, 3:]).sum(1, keepdim=True)


def test_an_audit_puts_back_the_items_of_a_dict_the_model_writes_into() -> None:
    torch.manual_seed(0)
    model = _Hyper().eval()
    x = torch.randn(12, 7)
    with torch.no_grad():
        model(x[:5])
    kept = model.cache["W"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [UnitImportanceAudit(["hyper.1"], unit_dim=-1)], Probe(x, torch.zeros(12, dtype=torch.long)),
                    probe_size=12)
    assert model.cache["W"] is kept and model.cache["W"].shape == (5, 4)
    assert list(model.cache) == ["W"] and model.config == {"scale": 2.0}


def test_audit_mode_removes_a_key_added_and_undoes_an_in_place_update() -> None:
    model = _Hyper().eval()
    model.cache["W"] = torch.zeros(2, 4)
    kept = model.cache["W"]
    with audit_mode(model):
        model.cache["W"].add_(1.0)  # in place: the same tensor
        model.cache["extra"] = torch.ones(1)
    assert list(model.cache) == ["W"] and model.cache["W"] is kept
    assert torch.equal(kept, torch.zeros(2, 4))
    with audit_mode(model):  # an empty dict that gets a tensor loses it again
        model.cache.clear()
        model(torch.randn(3, 7))
    assert list(model.cache) == ["W"] and model.cache["W"] is kept
