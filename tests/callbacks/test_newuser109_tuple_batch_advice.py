"""A batch of five tensors (x, pe, spd, attention_mask, y) of a graph transformer forward(x, pe, spd, attention_mask)
was refused with the advice `unpack_batch=lambda batch: (batch[0], batch[1], None)`, which reads the positional
encodings as labels; the refusal now writes the one that follows forward's order (newuser109)."""

import re

import pytest
import torch
from torch import nn

from lightning_causal.batches import default_unpack_batch


class GraphModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4 + 2, 2)

    def forward(self, x, pe, spd, attention_mask):
        h = self.lin(torch.cat([x, pe], -1)) + spd.float().mean(-1, keepdim=True)
        m = attention_mask[..., None].float()
        return (h * m).sum(1) / m.sum(1)


def _batch():
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(5)[None] < torch.tensor([[3], [5], [4]])
    return (torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 2, generator=g), torch.randint(0, 4, (3, 5, 5), generator=g),
            mask, torch.tensor([0, 1, 1]))


def test_the_advice_follows_forwards_order_and_runs():
    model, batch = GraphModel(), _batch()
    with pytest.raises(ValueError) as caught:
        default_unpack_batch(batch, model.forward)
    advice = re.search(r"`unpack_batch=(lambda batch: \(batch\[0\], batch\[4\], \{.*?\})\)`", str(caught.value))
    assert advice is not None, str(caught.value)
    assert "(x, pe, spd, attention_mask)" in str(caught.value)
    x, y, kwargs = eval(advice.group(1) + ")")(batch)  # noqa: S307 - the advice as a user pastes it
    assert y is batch[4] and sorted(kwargs) == ["attention_mask", "pe", "spd"]
    assert torch.equal(model(x, **kwargs), model(*batch[:4]))


def test_no_advice_where_forward_says_nothing():
    with pytest.raises(ValueError) as caught:
        default_unpack_batch(_batch())
    assert "if the items are forward's" not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        default_unpack_batch(_batch(), lambda x, pe: None)  # two parameters for five items: no reading
    assert "if the items are forward's" not in str(caught.value)
