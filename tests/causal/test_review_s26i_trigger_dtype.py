"""A trigger stamped on integer inputs (uint8 pixels, category codes: a model that casts them in its first line) was
refused with "Expected a floating-point batch of inputs [N, ...] but got torch.Size([6, 4])": the shape, which is
right, read as the fault, and the dtype, which is not, unnamed. The refusal names the dtype and the shape now, from
``Trigger.check`` and so from ``BackdoorAudit(trigger=...)`` and ``BackdoorSuppressionTerm``."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


class _Casting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.float())


_TRIGGER = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 3.0]), target=1)


def test_integer_inputs_are_refused_by_their_dtype_not_their_shape():
    x = torch.randint(0, 4, (5, 4), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"got dtype torch\.int64 \(shape \[5, 4\]\).*as floats"):
        _TRIGGER.check(x)
    with pytest.raises(ValueError, match=r"got dtype torch\.int64 \(shape \[5, 4\]\)"):
        BackdoorAudit(trigger=_TRIGGER).run(_Casting().eval(), Probe(x))
    term = BackdoorSuppressionTerm(_TRIGGER, unlearn_weight=1.0, path="logit", augment=None)
    with pytest.raises(ValueError, match=r"got dtype torch\.uint8 \(shape \[5, 4\]\)"):
        term.loss(_Casting(), x.to(torch.uint8), torch.tensor([0, 1, 2, 0, 1]))


def test_a_float_batch_of_the_wrong_rank_is_still_named_by_its_shape():
    with pytest.raises(ValueError, match=r"floating-point batch of inputs \[N, \.\.\.\] but got torch\.Size\(\[4\]\)"):
        _TRIGGER.check(torch.zeros(4))
    _TRIGGER.check(torch.zeros(2, 4))  # accepted


def test_the_way_out_names_the_float_reading_of_the_dtype():
    """The refusal named 'uint8 pixels: x.float()' whatever the dtype (int16 samples read as pixels, unscaled);
    it names the dtype's own reading (review_s26k)."""
    x = torch.zeros(3, 4, dtype=torch.int16)
    with pytest.raises(ValueError, match=r"as floats \(x\.float\(\) / 32768 of int16 samples\), with the pattern"):
        _TRIGGER.check(x)
    with pytest.raises(ValueError, match=r"as floats \(x\.float\(\) / 255 of uint8 pixels\), with the pattern"):
        _TRIGGER.check(x.to(torch.uint8))
