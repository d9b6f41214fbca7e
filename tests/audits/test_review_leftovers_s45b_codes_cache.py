"""The category codes' reading held per model and probe (d5fef20c) was kept where the model's embedding table was
replaced by a larger one with new offsets between audits (review of leftovers_s45b): the columns named by the old
offsets ('emb from 3' where the table now reads them from 4). Modules and integer buffers set anew now read again."""

import torch
from torch import nn

from lightning_causal.audits import Probe
from lightning_causal.audits.category_codes import code_columns


class _SharedTable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0, 3, 8]))
        self.emb = nn.Embedding(12, 4)
        self.head = nn.Linear(12, 2)

    def forward(self, x):
        return self.head(self.emb(x + self.offsets).flatten(1))


def _codes(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in (3, 5, 4)], 1)


def test_a_table_resized_with_new_offsets_is_read_again():
    model, probe = _SharedTable().eval(), Probe(_codes())
    assert code_columns(model, probe) == {"emb from 0": 0, "emb from 3": 1, "emb from 8": 2}
    model.offsets = torch.tensor([0, 4, 10])  # a level added to the first two columns
    model.emb = nn.Embedding(14, 4)
    assert code_columns(model, probe) == {"emb from 0": 0, "emb from 4": 1, "emb from 10": 2}


def test_the_reading_is_kept_while_only_weights_and_statistics_change():
    model, probe = _SharedTable().eval(), Probe(_codes())
    calls = []
    model.emb.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    for _ in range(3):
        assert code_columns(model, probe) == {"emb from 0": 0, "emb from 3": 1, "emb from 8": 2}
        with torch.no_grad():
            model.emb.weight.add_(1.0)  # a training step: same modules, same buffers
    assert calls == [16, 64]  # one reading: 16 rows, then 64 for the offsets
