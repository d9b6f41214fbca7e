"""Trial newuser35: CounterfactualAudit on uint8 pixels and bool masks said only "optimises continuous
inputs but the probe holds torch.uint8"; it now names the way (the probe read as floats, with bounds), which works."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CounterfactualAudit, audit_model


class _Mask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 3)

    def forward(self, m):
        return self.fc(m.float())


def test_a_mask_probe_is_told_to_read_floats_and_that_way_works():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(10, 6, generator=g) < 0.5, torch.randint(0, 3, (10,), generator=g)
    with pytest.raises((ValueError, MisconfigurationException), match=r"holds torch.bool; read the probe as floats, `unpack_batch=lambda batch: "
                                         r"\(batch\[0\].float\(\), batch\[1\], None\)`.*`bounds=\(0, 1\)` for bool masks"):
        audit_model(_Mask(), CounterfactualAudit(), (x, y), probe_size=10)
    (result,) = audit_model(_Mask(), CounterfactualAudit(bounds=(0, 1)), (x, y), probe_size=10,
                            unpack_batch=lambda batch: (batch[0].float(), batch[1], None))
    assert result.scalars["explained"] > 0 and result.scalars["success_rate"] == 1.0
