"""Classifier-free guidance runs a denoiser's network on every sample twice, with and without its condition, most often
as ``torch.cat([x_t, x_t])`` (diffusers' pipelines: ``torch.cat([latents] * 2)``): each layer then holds row 0 of every
sample, then row 1 ([2·N, ...], copy after copy). ``unit_effects`` and ``UnitImportanceAudit`` refused such a layer
with words for a ``batch_first=False`` model ("a [T·N, ...] layout, positions first") and "name a module with one row
per sample", which no layer of the guided model has; the causal graph and the layer map named Swin, OPT and graph
networks. The refusals now name the guidance's copies and the way out: stack a sample's copies together (the same
outputs, and the layer's unit effects then equal a hand-written set-the-unit loop), or explain the conditional network.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import causal_graph, layer_causal_map, unit_effects

NULL = 3


class Net(nn.Module):
    """A conditional denoiser ``forward(x_t, t, y)``; GroupNorm (per sample) after its first conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.gn = nn.GroupNorm(2, 4)
        self.temb, self.yemb = nn.Embedding(5, 4), nn.Embedding(NULL + 1, 4)
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x_t, t, y):
        h = torch.tanh(self.gn(self.conv1(x_t))) + (self.temb(t) + self.yemb(y))[:, :, None, None]
        return self.conv2(h)


class Guided(nn.Module):
    """``u + w (c - u)``, the copies laid out copy after copy (``torch.cat``) or sample after sample (``stack``)."""

    def __init__(self, net: Net, stacked: bool, w: float = 2.0) -> None:
        super().__init__()
        self.net, self.stacked, self.w = net, stacked, w

    def forward(self, x_t, t, y):
        null = torch.full_like(y, NULL)
        if self.stacked:
            two = lambda a, b: torch.stack([a, b], 1).flatten(0, 1)  # noqa: E731
            c, u = self.net(two(x_t, x_t), two(t, t), two(y, null)).unflatten(0, (-1, 2)).unbind(1)
        else:
            c, u = self.net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return u + self.w * (c - u)


def _data():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(6, 1, 5, 5, generator=g)
    t, y = torch.randint(0, 5, (6,), generator=g), torch.randint(0, NULL, (6,), generator=g)
    return net, x, t, y


def region(out):
    return out[:, :, 1:4, 1:4].mean((2, 3))


def test_copies_laid_out_copy_after_copy_are_refused_naming_guidance_and_the_stacked_layout():
    net, x, t, y = _data()
    with pytest.raises(ValueError, match="rows interleaved or changed") as err:
        unit_effects(Guided(net, stacked=False), x, "net.conv1", output=region, additional_forward_args=(t, y))
    said = str(err.value)
    assert "classifier-free guidance's torch.cat([x_t, x_t])" in said
    assert "torch.stack([x_t, x_t], 1).flatten(0, 1)" in said
    assert "out.unflatten(0, (-1, 2)).unbind(1)" in said


@pytest.mark.parametrize("max_batch_size", [None, 1])
def test_the_stacked_layout_gives_the_guided_outputs_and_the_hand_loops_unit_effects(max_batch_size):
    net, x, t, y = _data()
    copies, stacked = Guided(net, stacked=False), Guided(net, stacked=True)
    with torch.no_grad():
        assert torch.equal(copies(x, t, y), stacked(x, t, y))
        clean = region(copies(x, t, y))[:, 0]
        hand = []
        for u in range(4):  # do(unit u := 0) in both copies of every sample, by a hook
            def zero(module, args, out, u=u):
                out = out.clone()
                out[:, u] = 0
                return out
            handle = net.conv1.register_forward_hook(zero)
            hand.append(clean - region(copies(x, t, y))[:, 0])
            handle.remove()
    got = unit_effects(stacked, x, "net.conv1", output=region, additional_forward_args=(t, y),
                       max_batch_size=max_batch_size)
    torch.testing.assert_close(got, torch.stack(hand, 1), rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:The layer map leaves out")
def test_graph_and_layer_map_name_the_conditional_network():
    net, x, t, y = _data()
    model = Guided(net, stacked=False)
    with pytest.raises(ValueError, match="With 2 rows per sample") as err:
        causal_graph(model, x, ["net.conv1"], output=region, additional_forward_args=(t, y))
    assert "Classifier-free guidance runs every sample twice" in str(err.value)
    with pytest.raises(ValueError, match="With 2 rows per sample") as err:
        layer_causal_map(model, x, output=region, additional_forward_args=(t, y))
    assert "explain the conditional network it calls, forward(x_t, t, y)" in str(err.value)


class _RowsByValue(nn.Module):
    """A layer of as many rows as a sample has positive elements, sorted across the batch: rows of unequal counts per
    sample, in no sample's order."""

    def forward(self, x):
        h = x.reshape(-1, 1)
        return h[h[:, 0] > 0].sort(0, descending=True).values


def test_unequal_rows_per_sample_keep_the_plain_refusal():
    """Two samples alone of 1 and 3 rows (fold 2 on the pair) cannot be stacked copy by copy: the check refuses them as
    before, a ValueError, not torch's RuntimeError of stacking tensors of unequal sizes."""
    from lightning_causal.causal.engine.folded_rows import check_sample_major

    model = nn.Sequential(_RowsByValue())
    x = torch.tensor([[1.0, -1.0, -1.0, -1.0], [2.0, 3.0, 4.0, -1.0]])
    with pytest.raises(ValueError, match=r"rows interleaved or changed \(a \[T·N, ...\] layout"):
        check_sample_major("0", lambda xi, rows: model(*xi), model, (x,), 2)
