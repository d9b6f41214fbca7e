"""The one-step way of an LSTM read through ``h_n`` (383ed6b8) names the first module taking a view of ``h_n``: for a
residual head ``z = h[-1]; fc(z + proj(z))`` that is ``proj``, whose input carries one branch of ``z`` only, so
following the advice (``'proj:input'``) measured the units through ``proj`` alone, silently. The reader is now named only
where its input carries all the model reads of ``h_n`` (a pass with ``h_n`` moved and the reader's input put back gives
the plain output); else the generic way, the input of the layer that reads it."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.unit_sites import tuple_reader


class Head(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.proj, self.fc = nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        _out, (h, _c) = self.lstm(x)
        z = h[-1]
        if self.mode == "residual":
            return self.fc(z + self.proj(z))
        if self.mode == "side":  # proj reads h_n first (a value logged, say), but the output reads z itself
            side = self.proj(z)
            return self.fc(z) + 0.0 * side.sum(1, keepdim=True)
        return self.fc(self.proj(z))  # "chain": proj carries all of it


def _x() -> torch.Tensor:
    return torch.randn(5, 7, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode, reader", [("residual", None), ("side", None), ("chain", "proj")])
def test_the_reader_is_named_only_where_it_carries_all_of_h_n(mode, reader):
    torch.manual_seed(0)
    model, x = Head(mode).eval(), _x()
    assert tuple_reader(model, model.lstm, lambda: model(x[:1])) == reader
    with pytest.raises(ValueError, match="depend on element 0") as err:
        unit_effects(model, x, "lstm")
    way = str(err.value).split("In one step, ")[1]
    assert way.startswith(f"name the site '{reader}:input'" if reader else "name the input of the layer that reads it")

