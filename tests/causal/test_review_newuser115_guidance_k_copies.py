"""Guidance of more than two copies (InstructPix2Pix's ``torch.cat([latents] * 3)``: no condition, the image alone,
image and text) lays every layer out copy after copy, ``[3·N, ...]``. The refusal named the way out for two copies
only, ``torch.stack([x_t, x_t], 1)`` and ``out.unflatten(0, (-1, 2))``, which for three pairs the wrong rows. It now
writes the fold's ``k`` copies, and followed, the stacked model gives the same outputs and the unit effects of a
hand-written set-the-unit loop over every copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import unit_effects
from lightning_causal.causal import Scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.c = nn.Embedding(3, 6)
        self.out = nn.Linear(6, 4)

    def forward(self, x, k):
        return self.out(torch.tanh(self.fc(x) + self.c(k)))


class ThreeCopies(nn.Module):
    """``e0 + 2 (e1 - e0) + 1.5 (e2 - e1)`` of three conditions, copy after copy (``cat``) or sample after sample."""

    def __init__(self, net: Net, stacked: bool) -> None:
        super().__init__()
        self.net, self.stacked = net, stacked

    def forward(self, x, y):
        ks = (torch.full_like(y, 2), y, torch.zeros_like(y))
        if self.stacked:
            e = self.net(torch.stack([x] * 3, 1).flatten(0, 1), torch.stack(ks, 1).flatten(0, 1)).unflatten(0, (-1, 3)).unbind(1)
        else:
            e = self.net(torch.cat([x] * 3), torch.cat(ks)).chunk(3)
        return e[0] + 2 * (e[1] - e[0]) + 1.5 * (e[2] - e[1])


def _data():
    torch.manual_seed(0)
    net = Net().eval()
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(5, 4, generator=g), torch.randint(0, 2, (5,), generator=g)


def head(out):
    return out[:, :2].sum(1, keepdim=True)


def test_three_copies_are_refused_naming_the_three_copy_layout():
    net, x, y = _data()
    with pytest.raises(ValueError, match=r"copy after copy \(\[3·N") as err:
        unit_effects(ThreeCopies(net, stacked=False), x, "net.fc", output=head, additional_forward_args=(y,))
    said = str(err.value)
    assert "torch.stack([x_t] * 3, 1).flatten(0, 1)" in said and "out.unflatten(0, (-1, 3)).unbind(1)" in said
    assert "(-1, 2)" not in said and "[x_t, x_t]" not in said


def test_the_three_copies_stacked_as_named_give_the_outputs_and_the_hand_loops_unit_effects():
    net, x, y = _data()
    copies, stacked = ThreeCopies(net, stacked=False), ThreeCopies(net, stacked=True)
    with torch.no_grad():
        torch.testing.assert_close(stacked(x, y), copies(x, y), rtol=0, atol=1e-6)
        clean = head(copies(x, y))
        hand = []
        for u in range(6):  # do(unit u := 0.5 unit u) in every copy of every sample
            def scale(module, args, out, u=u):
                out = out.clone()
                out[:, u] = out[:, u] * 0.5
                return out
            handle = net.fc.register_forward_hook(scale)
            hand.append((clean - head(copies(x, y)))[:, 0])
            handle.remove()
    got = unit_effects(stacked, x, "net.fc", intervention=Scale(0.5), output=head, additional_forward_args=(y,))
    assert torch.stack(hand, 1).abs().max() > 0.01  # the units move the guided output
    torch.testing.assert_close(got, torch.stack(hand, 1), rtol=0, atol=1e-6)
