"""newuser119 trial: docs/your_model.md's TSM recipe runs as printed, and its ``nn.Unflatten`` sites (the rows put back
per clip, ``unit_dim=2``) give each filter the importance UnitImportanceAudit gives the folded convolution itself
(``[N·T, C, H, W]``), and both equal a hand loop that zeroes the filter in every frame of every clip with a hook."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits import Probe

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


class Shift(nn.Module):
    """TSM's shift: a quarter of the channels one frame forward, a quarter back, along T of each clip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.view(-1, 8, *x.shape[1:])
        f = x.shape[1] // 4
        out = torch.zeros_like(v)
        out[:, 1:, :f], out[:, :-1, f:2 * f], out[:, :, 2 * f:] = v[:, :-1, :f], v[:, 1:, f:2 * f], v[:, :, 2 * f:]
        return out.view_as(x)


def _recipe() -> dict:
    code = re.search(r"<!-- clip-tsm -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {"__name__": "clip_tsm_recipe"}
    exec(compile(code, "<your_model.md clip-tsm>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns


def test_the_clip_sites_give_the_folded_convolutions_importances():
    ns = _recipe()
    torch.manual_seed(0)
    model = ns["ClipTSM"](nn.Sequential(Shift(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()),
                          nn.Sequential(Shift(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())).eval()
    x = torch.randn(6, 8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    probe = Probe(x, torch.zeros(6, dtype=torch.long))
    sites = ns["audits"][2].run(model, probe).vectors
    folded = UnitImportanceAudit(["block1.1", "block2.1"]).run(model, probe).vectors
    with torch.no_grad():
        base = model(x)
        c = base.argmax(1, keepdim=True)
        for site, layer in (("clip1", "block1.1"), ("clip2", "block2.1")):
            conv = model.get_submodule(layer)
            hand = []
            for j in range(16):
                h = conv.register_forward_hook(lambda _m, _i, o, j=j: o.index_fill(1, torch.tensor([j]), 0.0))
                hand.append((model(x) - base).gather(1, c).abs().mean())
                h.remove()
            torch.testing.assert_close(sites[f"importance/{site}"], torch.stack(hand), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(folded[f"importance/{layer}"], torch.stack(hand), atol=1e-5, rtol=1e-4)
