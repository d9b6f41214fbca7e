"""newuser50 trial: UnitImportanceAudit on a module that runs several times per forward pass (a siamese encoder's
ReLU, applied to both halves of the input) sets each unit at every call, as docs/your_model.md says, but its bars,
text card and report did not say that the layer runs twice: a user reads the bars of 'enc.1' as one layer's. The
audit now records ``calls/<layer>`` and a note (shown on the text card), and ``UnitEffectsInfo.calls`` holds the
count."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import unit_effects


class _Siamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
        self.head = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.enc(x[:, :4]), self.enc(x[:, 4:])], 1))


def _hand_importance(model: _Siamese, x: torch.Tensor) -> torch.Tensor:
    """E|f_t(x) - f_t(x | do(h_u := 0) at both calls)| per unit u of enc.1, by hand."""
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        a, b = model.enc(x[:, :4]), model.enc(x[:, 4:])
        imp = []
        for u in range(5):
            keep = (torch.arange(5) != u).to(x.dtype)
            y = model.head(torch.cat([a * keep, b * keep], 1))
            imp.append((out.gather(1, t) - y.gather(1, t)).abs().mean())
    return torch.stack(imp)


def test_the_audit_says_a_shared_layer_runs_twice_and_sets_every_call() -> None:
    torch.manual_seed(0)
    model, x = _Siamese().double().eval(), torch.randn(16, 8, dtype=torch.float64)
    result = UnitImportanceAudit(["enc.1", "head"], unit_dim=-1).run(model, Probe(x))
    assert torch.allclose(result.vectors["importance/enc.1"], _hand_importance(model, x), atol=1e-12)
    assert result.meta["calls/enc.1"] == 2 and "calls/head" not in result.meta
    assert result.meta["notes"] == ["enc.1 runs several times per forward pass (up to 2 calls a pass on the probe): "
                                    "each unit is set at every call (an nn.Identity "
                                    "per call names one: docs/your_model.md, 'Layers in functional code')"]
    _, info = unit_effects(model, x, "enc.1", unit_dim=-1, return_info=True)
    assert info.calls == 2 and info.to_dict()["calls"] == 2


def test_a_layer_run_once_has_no_note() -> None:
    torch.manual_seed(0)
    model, x = _Siamese().double().eval(), torch.randn(16, 8, dtype=torch.float64)
    result = UnitImportanceAudit(["head"], unit_dim=-1).run(model, Probe(x))
    assert "notes" not in result.meta
