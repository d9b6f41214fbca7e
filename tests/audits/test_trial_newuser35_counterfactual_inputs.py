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


class _Pcm(nn.Module):  # int16 samples the model scales inside, as uint8 pixels are
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x.float() / 32768)


def test_int16_samples_are_told_the_same_way_with_their_range():
    """int8/int16 samples are values the model casts (token_ids.INDEX_DTYPES: int64/int32 alone are ids), so they get
    the way uint8 pixels get (before: 'optimises continuous inputs but the probe holds torch.int16', nothing more)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(-3000, 3000, (10, 6), generator=g, dtype=torch.int16), torch.randint(0, 3, (10,), generator=g)
    with pytest.raises((ValueError, MisconfigurationException), match=r"holds torch.int16; read the probe as floats, `unpack_batch=lambda "
                       r"batch: \(batch\[0\].float\(\), batch\[1\], None\)`.*`bounds=\(-32768, 32767\)` for torch.int16 samples\n"):
        audit_model(_Pcm(), CounterfactualAudit(), (x, y), probe_size=10)
    (result,) = audit_model(_Pcm(), CounterfactualAudit(bounds=(-32768, 32767)), (x, y), probe_size=10,
                            unpack_batch=lambda batch: (batch[0].float(), batch[1], None))
    assert result.scalars["explained"] > 0
    with pytest.raises((ValueError, MisconfigurationException), match=r"holds torch.int64; for ids in bags") as err:
        audit_model(_Pcm(), CounterfactualAudit(), (x.long(), y), probe_size=10)  # token ids: no values between them,
    assert "float()" not in str(err.value)  # so no cast to floats: the search over each bag's counts (newuser88)
