"""final_read_C45 finding 6: an rtdl-style ``emb(x + offsets)`` (one table, each column from its own offset) was not
found on a probe of fewer than 16 rows (the offsets are matched on more rows than 8 give), and InputEffectAudit ranked
its codes as token ids of one vocabulary (``top_tokens``). A small probe's columns are now read on 64 rows drawn from
each column's own values (a private generator: the global stream does not move)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.category_codes import code_columns

CARD = (3, 5, 4)


class Offsets(nn.Module):
    def __init__(self, shift: tuple[int, ...] = (0, 3, 8)) -> None:
        super().__init__()
        self.register_buffer("offsets", torch.tensor(shift))
        self.emb, self.head = nn.Embedding(sum(CARD) + 1, 4), nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x + self.offsets).flatten(1))


def _codes(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARD], 1)


@pytest.mark.parametrize("n", [3, 8, 15])
def test_offsets_are_read_as_codes_on_a_small_probe(n):
    torch.manual_seed(0)
    model, rng = Offsets().eval(), torch.get_rng_state()
    assert code_columns(model, Probe(_codes(n))) == {"emb from 0": 0, "emb from 3": 1, "emb from 8": 2}
    assert torch.equal(torch.get_rng_state(), rng)
    result = InputEffectAudit(baseline=0).run(model, Probe(_codes(n), torch.zeros(n, dtype=torch.long)))
    assert "top_codes" in result.tables and "top_tokens" not in result.tables  # was top_tokens: one vocabulary
    assert code_columns(Offsets((1, 1, 1)).eval(), Probe(_codes(n))) == {}  # ids + 1: token ids of one vocabulary
