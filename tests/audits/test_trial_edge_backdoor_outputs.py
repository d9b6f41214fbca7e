"""Trial "edge": BackdoorAudit on a model with one output per sample. A model returning ``[N]`` (a
squeezed binary logit) crashed with "IndexError: tuple index out of range" (``logits.shape[1]``), with
or without a trigger; it now gets the message a ``[N, 1]`` model gets: at least 2 class outputs, and
``torch.cat([-z, z], 1)`` as the way out."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal import Trigger


class OneLogit(nn.Module):
    def __init__(self, squeeze: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.squeeze = nn.Linear(4, 1), squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        return z[:, 0] if self.squeeze else z


@pytest.mark.parametrize("squeeze", [True, False], ids=["[N]", "[N, 1]"])
@pytest.mark.parametrize("trigger", [None, Trigger(torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.ones(4), 0)], ids=["reversed", "known"])
def test_one_output_per_sample_is_refused_with_the_way_out(squeeze, trigger):
    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"at least 2 outputs but it returns 1|classes >= 2\] but the model returned 1 output") as err:
        BackdoorAudit(trigger=trigger, steps=2).run(OneLogit(squeeze), Probe(x, torch.zeros(6, dtype=torch.long)))
    assert "torch.cat([-z, z], 1)" in str(err.value)
