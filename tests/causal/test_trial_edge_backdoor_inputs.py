"""Trial "edge": Neural Cleanse on a probe it cannot optimise over. A NaN in a sample was refused as
"argument `pattern`" (which the caller never passed: the pattern's range is drawn from `x`), and
integer inputs as "a non-empty floating-point batch [N, ...] but got torch.Size([5, 4])" (the shape
read as the fault). Both now name `x` and what is wrong with it."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal import Trigger, reverse_engineer_triggers


class Casting(nn.Module):
    """Reads integer features (category codes) as floats."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


def _model() -> nn.Module:
    return Casting().eval()


def test_a_nan_sample_is_named_not_the_pattern():
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"argument `x` to be finite but samples \[2\] of 5"):
        reverse_engineer_triggers(_model(), x, 3, steps=2)


def test_integer_inputs_are_named_by_their_dtype():
    x = torch.randint(0, 4, (5, 4), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"floating-point batch but got dtype torch\.int64") as err:
        BackdoorAudit(steps=2).run(_model(), Probe(x))
    assert "x.float() of int64 values" in str(err.value)


def test_the_advice_for_integer_inputs_is_a_way_that_works():
    """The refusal advised a known trigger (BackdoorAudit(trigger=...)) for integer inputs, which Trigger.check refuses
    too; it names the float reading that a trigger can be stamped on, and a known trigger on those floats runs."""
    x = torch.randint(0, 256, (6, 4), generator=torch.Generator().manual_seed(1)).to(torch.uint8)
    with pytest.raises(ValueError) as err:
        reverse_engineer_triggers(_model(), x, 3, steps=2)
    message = str(err.value)
    assert "x.float() / 255 of uint8 pixels" in message and "instead" not in message
    mask, pattern = torch.zeros(4), torch.ones(4)
    mask[0] = 1.0
    with pytest.raises(ValueError, match=r"dtype torch\.uint8"):
        BackdoorAudit(trigger=Trigger(mask, pattern, target=0)).run(_model(), Probe(x))
    result = BackdoorAudit(trigger=Trigger(mask, pattern, target=0)).run(_model(), Probe(x.float() / 255))
    assert result is not None
