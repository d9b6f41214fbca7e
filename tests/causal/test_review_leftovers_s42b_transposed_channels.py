"""d189d1ad gave a block that lays its last convolution's channels last (timm's ``PatchEmbed``) its features last, and
the refusal of the default units said "the block flattens its Conv2d's channels last, [N, D, h, w] to [N, h*w, D], as a
patch embedding does" for every such block: untrue of a Conformer's convolution module, a ``Conv1d`` over a sequence's
steps transposed back to ``[N, T, D]`` at the same rank, and of a Swin patch embedding returning ``[N, h, w, D]``. The
refusal now says what the block did to the convolution's shape."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _ConformerConv(nn.Module):
    """[N, T, D] -> Conv1d over the steps ([N, D, T]) -> back to [N, T, D]: the D channels are the features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x.transpose(1, 2)).transpose(1, 2)


class _NHWCPatches(nn.Module):
    """A Swin-style patch embedding: Conv2d to [N, 8, 4, 4], permuted to [N, 4, 4, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class _Net(nn.Module):
    def __init__(self, block: nn.Module, width: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.block, self.head = block, nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(x)
        return self.head(h.flatten(1, -2).mean(1))


@pytest.mark.parametrize(("block", "x", "words"), [
    (_ConformerConv(), torch.randn(4, 10, 6, generator=torch.Generator().manual_seed(1)), "transposes its Conv1d's channels last, [1, 6, 10] to [1, 10, 6])"),
    (_NHWCPatches(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2)), "transposes its Conv2d's channels last, [1, 8, 4, 4] to [1, 4, 4, 8])"),
])
def test_a_same_rank_transpose_is_not_called_a_flattening(block, x, words):
    model = _Net(block, x.shape[-1] if isinstance(block, _ConformerConv) else 8).eval()
    with pytest.raises(ValueError) as caught:
        unit_effects(model, x, "block", target=1)
    assert words in str(caught.value) and "flattens" not in str(caught.value)
    effects = unit_effects(model, x, "block", target=1, unit_dim=-1)  # the way out: the channels, zeroed one at a time
    with torch.no_grad():
        h = model.block(x)
        for d in range(h.shape[-1]):
            zeroed = h.clone()
            zeroed[..., d] = 0
            hand = model.head(h.flatten(1, -2).mean(1))[:, 1] - model.head(zeroed.flatten(1, -2).mean(1))[:, 1]
            torch.testing.assert_close(effects[:, d], hand, rtol=1e-5, atol=1e-6)


def test_a_patch_embedding_keeps_the_flattening_words_with_its_shapes():
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, 8, 4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x).flatten(2).transpose(1, 2)

    with pytest.raises(ValueError, match=r"flattens its Conv2d's channels last, \[1, 8, 4, 4\] to \[1, 16, 8\], as a "
                                         r"patch embedding does"):
        unit_effects(_Net(Flat(), 8).eval(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3)), "block", target=1)
