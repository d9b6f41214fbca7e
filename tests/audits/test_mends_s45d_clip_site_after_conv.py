"""final_read_C45 finding 3: docs/your_model.md's TSM recipe said its ``nn.Unflatten`` sites give "the same numbers as
on block1.conv, block2.conv". The site is the block's output: for the usual TSM block (shift -> conv -> BatchNorm ->
ReLU) its units are the block's output channels, whose importances are not the filters'. The page now says so and
shows the site right after the convolution, which gives each filter's own importance (a hand loop zeroing the filter
with a hook in every frame of every clip)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe
from tests.audits.test_trial_newuser119_clip_sites import PAGE, Shift, _recipe


def _hand(model: nn.Module, x: torch.Tensor, layer: str, units: int) -> torch.Tensor:
    """Each unit of ``layer``'s folded output zeroed in every frame: |change of the predicted logit|, mean over clips."""
    with torch.no_grad():
        base = model(x)
        c = base.argmax(1, keepdim=True)
        out = []
        for j in range(units):
            h = model.get_submodule(layer).register_forward_hook(
                lambda _m, _i, o, j=j: o.index_fill(1, torch.tensor([j]), 0.0))
            out.append((model(x) - base).gather(1, c).abs().mean())
            h.remove()
    return torch.stack(out)


def _warmed(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(5):  # BatchNorm statistics of their own, not 0 and 1
            model(torch.randn(16, 8, 1, 6, 6))
    return model.eval()


def test_the_block_site_reads_the_blocks_output_and_the_conv_site_the_filters():
    page = PAGE.read_text()
    assert "the same numbers as on block1.conv" not in page  # false for a block ending in BatchNorm -> ReLU
    ns = _recipe()
    code = page.split("<!-- clip-tsm-conv-site -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "<your_model.md clip-tsm-conv-site>", "exec"), ns)  # noqa: S102 - the docs' own example
    torch.manual_seed(0)
    usual = _warmed(ns["ClipTSM"](*(nn.Sequential(Shift(), nn.Conv2d(i, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
                                    for i in (8, 16))))
    x = torch.randn(6, 8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    probe = Probe(x, torch.zeros(6, dtype=torch.long))
    sites = ns["audits"][2].run(usual, probe).vectors
    for site, block in (("clip1", "block1"), ("clip2", "block2")):
        torch.testing.assert_close(sites[f"importance/{site}"], _hand(usual, x, f"{block}.3", 16), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(sites[f"importance/{site}"], _hand(usual, x, f"{block}.1", 16), atol=1e-4)
    torch.manual_seed(0)
    after = _warmed(ns["ClipTSM"](ns["block"](Shift(), 8, 16), ns["block"](Shift(), 16, 16)))
    filters = ns["filters"].run(after, probe).vectors
    for site, conv in (("block1.2", "block1.1"), ("block2.2", "block2.1")):
        torch.testing.assert_close(filters[f"importance/{site}"], _hand(after, x, conv, 16), atol=1e-5, rtol=1e-4)
