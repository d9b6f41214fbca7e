"""``live_values.close`` (a split's outputs and live values against the model's): 57719991 made outputs of another
dtype not close (a traced graph missing Lightning Fabric's output cast gives float64 where the model gives float32), and
with it integers of other widths holding the same values (an index or a count in int32 beside int64), which
``torch.equal`` had compared by value: they are the same values, close again; floats of other widths, an integer
beside a float and booleans beside integers stay not close."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal.engine.live_values import close

INTS = torch.tensor([[0, 3, -7], [2, 1, 5]])


@pytest.mark.parametrize("a_dtype, b_dtype", [(torch.int32, torch.int64), (torch.int64, torch.int16), (torch.int8, torch.int32)])
def test_integers_of_other_widths_with_the_same_values_are_close(a_dtype, b_dtype):
    assert close(INTS.to(a_dtype), INTS.to(b_dtype))  # before: False
    other = INTS.clone()
    other[1, 2] = 4
    assert not close(INTS.to(a_dtype), other.to(b_dtype))


def test_unsigned_bytes_are_compared_by_value_not_by_bits():
    assert not close(torch.tensor([255], dtype=torch.uint8), torch.tensor([-1], dtype=torch.int8))
    assert close(torch.tensor([200], dtype=torch.uint8), torch.tensor([200]))


@pytest.mark.parametrize("a, b", [(INTS.float(), INTS.double()), (INTS, INTS.float()), (INTS.bool(), INTS.ne(0).long()),
                                  (INTS.float(), INTS.float().to(torch.complex64))])
def test_other_kinds_or_float_widths_stay_not_close(a, b):
    assert not close(a, b)
