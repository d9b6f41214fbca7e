"""A batch (x_num, x_cat, y) of a tabular model forward(x_num, x_cat) (numeric columns, integer category codes, labels)
was refused with the advice `unpack_batch=lambda batch: (batch[0], batch[1], None)`, which reads the category codes as
the labels; the refusal now writes the reading of a model of two inputs, in forward's parameter names (newuser117)."""

import re

import pytest
import torch
from torch import nn

from lightning_causal.batches import default_unpack_batch


class Tabular(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cat = nn.ModuleList(nn.Embedding(n, 4) for n in (3, 5))
        self.head = nn.Linear(3 + 8, 2)

    def forward(self, x_num, x_cat):
        return self.head(torch.cat([x_num, *(e(x_cat[:, j]) for j, e in enumerate(self.cat))], 1))


def _batch():
    g = torch.Generator().manual_seed(0)
    codes = torch.stack([torch.randint(0, 3, (6,), generator=g), torch.randint(0, 5, (6,), generator=g)], 1)
    return torch.randn(6, 3, generator=g), codes, torch.tensor([0, 1, 1, 0, 1, 0])


def _advice(message: str, pattern: str) -> str:
    found = re.search(pattern, message)
    assert found is not None, message
    return found.group(1)


def test_both_readings_run_as_printed():
    model, batch = Tabular().eval(), _batch()
    with pytest.raises(ValueError) as caught:
        default_unpack_batch(batch, model.forward)
    message = str(caught.value)
    assert "explain='x_cat'" in message and "(x_num, x_cat, y)" in message
    inputs, y, args = eval(_advice(message, r"`unpack_batch=(lambda batch: \(\(batch\[0\], batch\[1\]\), .*?)`"))(batch)  # noqa: S307
    assert y is batch[2] and args is None and torch.equal(model(*inputs), model(batch[0], batch[1]))
    x, y, kwargs = eval(_advice(message, r"`unpack_batch=(lambda batch: \(batch\[0\], batch\[2\], \{'x_cat'.*?)`"))(batch)  # noqa: S307
    assert y is batch[2] and torch.equal(model(x, **kwargs), model(batch[0], batch[1]))


def test_no_such_advice_for_weights_lengths_or_an_unknown_forward():
    x, codes, y = _batch()
    for batch, forward in (((x, y, torch.ones(6)), Tabular().forward),  # (x, y, w): weights [N]
                           ((x, torch.full((6,), 3), y), lambda x, lengths: None),  # (x, lengths, y)
                           (_batch(), None), (_batch(), lambda x: None)):
        with pytest.raises(ValueError) as caught:
            default_unpack_batch(batch, forward)
        assert "of two inputs" not in str(caught.value)
