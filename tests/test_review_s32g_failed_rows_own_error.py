"""Review of be89c565: ``failed_rows_named`` turns a failure of a pass of fewer rows into the batch-coupled refusal
where the model reads its whole batch, and leaves the model's own error alone otherwise. Where the whole probe failed
too it raised that error ``from None``, which wiped the cause the model had given it (``raise RuntimeError(...) from
KeyError``): the user's traceback lost the error underneath. A model that fails on a pass of one row but treats its
rows independently keeps its own error as well."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map, unit_effects

ESTIMATES = [lambda m, x: unit_effects(m, x, "lin", unit_dim=-1), lambda m, x: causal_graph(m, x, ["lin"]),
             lambda m, x: layer_causal_map(m, x, torch.arange(4))]
IDS = ["unit_effects", "causal_graph", "layer_causal_map"]


class Lookup(nn.Module):
    """Fails on every batch, with a cause of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        try:
            return h * {}["scale"]
        except KeyError as err:
            raise RuntimeError("lookup table missing") from err


@pytest.mark.parametrize("estimate", ESTIMATES, ids=IDS)
def test_an_error_of_every_batch_keeps_its_cause(estimate):
    with pytest.raises(RuntimeError, match="lookup table missing") as err:
        estimate(Lookup().eval(), torch.rand(5, 4))
    assert isinstance(err.value.__cause__, KeyError)  # was None: raised `from None`


class OneRow(nn.Module):
    """Independent rows, but a pass of one row fails (a bug of the model's, not of its batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        if x.shape[0] == 1:
            raise RuntimeError("one row: squeezed away")
        return h


@pytest.mark.parametrize("estimate", ESTIMATES[:1], ids=IDS[:1])
def test_a_model_of_independent_rows_keeps_its_own_error(estimate):
    with pytest.raises(RuntimeError, match="one row: squeezed away"):
        estimate(OneRow().eval(), torch.rand(5, 4))
