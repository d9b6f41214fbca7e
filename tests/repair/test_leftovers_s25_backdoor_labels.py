"""BackdoorSuppressionTerm called directly, ``term.loss(model, x, y)``, with class labels that are not int64: float
class numbers (0.0, 1.0, 2.0 as float32) and int32 labels (NumPy's on some platforms) failed inside F.cross_entropy
with torch's 'expected target dtype to be Long or Byte, but got Float', naming neither the term nor the parameter.
Integer labels of any width are class indices (cast); float labels are refused with `.long()`, as BackdoorAudit and
CounterfactualAudit refuse them."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm

X = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0, 1, 2])


def _loss(y: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    mask = torch.zeros(1, 4, 4)
    mask[..., :2, :2] = 1
    term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1), distill_weight=0.0, seed=0)
    return term.loss(model, X, y)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
def test_integer_labels_of_any_width_are_the_class_indices(dtype):
    assert torch.equal(_loss(Y.to(dtype)), _loss(Y))


def test_float_class_numbers_are_refused_naming_y_and_long():
    with pytest.raises(ValueError, match=r"argument `y` to hold integer class indices .* got dtype torch.float32 "
                                         r"\(values \[0.0, 1.0, 2.0, 0.0\] ...\); convert them with `.long\(\)`"):
        _loss(Y.float())


def test_fractional_float_labels_are_said_to_be_no_classes():
    with pytest.raises(ValueError, match=r"not whole numbers: a regression target\?"):
        _loss(torch.tensor([0.5, 1.0, 2.0, 0.0, 1.0, 2.0]))
