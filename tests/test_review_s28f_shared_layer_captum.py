"""Review of newuser50's trial (an item it found and left): ``CaptumBaseline(layers=[<a shared layer>])`` compares the
causal effects of the layer's units, set at every call, with a Captum layer method, which reads its last call only;
only a console warning said so, the result's notes (the text card) and meta said nothing."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import unit_effects


class _Siamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.enc(x[:, :2]), self.enc(x[:, 2:])], 1))


def _audit(layer: str) -> tuple[_Siamese, torch.Tensor, object]:
    torch.manual_seed(0)
    model = _Siamese().double().eval()
    x = torch.randn(10, 4, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = audit_model(model, [CaptumBaseline(methods=("Saliency",), layers=[layer])], Probe(x), probe_size=10)
    return model, x, result


def test_a_shared_layers_comparison_says_the_captum_method_reads_its_last_call() -> None:
    model, x, result = _audit("enc.1")
    assert result.meta["calls/enc.1"] == 2
    (note,) = [n for n in result.meta["notes"] if n.startswith("enc.1 runs several times per forward pass (up to 2 calls a pass on the probe)")]
    assert "reads its last call only" in note and "every call" in note
    # the causal effects compared are those of setting each unit at both calls: unit 0 := 0 by hand
    target = model(x).argmax(1)
    h1, h2 = model.enc(x[:, :2]), model.enc(x[:, 2:])
    w = model.head.weight[target]
    want = (w[:, 0] * h1[:, 0] + w[:, 3] * h2[:, 0]).detach()  # out - do(unit 0 := 0 at both calls)
    got = unit_effects(model, x, "enc.1", target=target)
    assert torch.allclose(got[:, 0], want, atol=1e-12)


def test_a_layer_run_once_gets_no_such_note() -> None:
    _, _, result = _audit("head")
    assert "calls/head" not in result.meta
    assert not any("times per forward pass" in n for n in result.meta.get("notes", []))
