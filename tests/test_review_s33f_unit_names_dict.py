"""Review of 513e6b7b: the units' names came from one hooked pass in which every module's output was read with
``module_output``, which raises for a module returning neither a tensor nor a tuple of them: one submodule returning a
dict (an encoder's ``{"feat": h}``) failed the whole pass, and every layer kept the name ``unit_dim`` gives, the ReLU
after an ``nn.Conv1d`` "neuron" again, without a word. Such a module's call is now passed over."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv1d(2, 4, 3, padding=1), nn.ReLU()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"feat": self.act(self.conv(x))}


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head = _Encoder(), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(x)["feat"].flatten(1))


def test_a_submodule_returning_a_dict_leaves_the_names_as_the_model_says() -> None:
    torch.manual_seed(0)
    r = UnitImportanceAudit(["enc.act"], unit_dim=-1, target=0).run(_Net().eval(), Probe(torch.randn(8, 2, 8)))
    assert r.meta["unit_kind/enc.act"] == "position"
    assert any(n.startswith("enc.act carries the output of nn.Conv1d 'enc.conv'") for n in r.meta["notes"])
