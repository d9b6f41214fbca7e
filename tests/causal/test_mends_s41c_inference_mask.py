"""An attention mask made under ``torch.inference_mode()`` (samples prepared by serving code) keeps no version counter:
``ablation._read_keys`` read its ``_version`` to hold its keep mask for the run (``mask_reads``, 8f5d1ca1), so every
direct audit run on such a probe raised ``RuntimeError: Inference tensors do not track version counter``. Such a mask
is now read as it comes (no counter to tell a change in place), and gives what the same mask outside inference mode
gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_causal.causal.engine.ablation as ablation
from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.ablation import key_padding, mask_reads
from tests.causal.test_leftovers_s41b_mask_reads import T, _counted, _data


class _Pooled(nn.Module):  # a mean over the real steps, read from the first query's row of a [N, T, T] or [N, 1, T, T] mask
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)

    def forward(self, x, attention_mask):
        keep = attention_mask.reshape(len(x), -1, T, T)[:, 0, 0].unsqueeze(-1).float()
        return self.fc((x * keep).sum(1) / keep.sum(1))


def _masks(dims: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, _, square = _data()
    plain = square if dims == 4 else square[:, 0].contiguous()
    with torch.inference_mode():
        served = plain.clone()
    assert served.is_inference() and not plain.is_inference()
    return x, plain, served


@pytest.mark.parametrize("dims", [3, 4])
def test_a_run_on_an_inference_mask_gives_the_plain_masks_effects(dims):
    x, plain, served = _masks(dims)
    fm = torch.arange(T)[:, None].expand(1, T, 3)
    ref = InputEffectAudit(feature_mask=fm, target=1).run(_Pooled(), Probe(x, additional_forward_args={"attention_mask": plain}))
    got = InputEffectAudit(feature_mask=fm, target=1).run(_Pooled(), Probe(x, additional_forward_args={"attention_mask": served}))
    assert ref.vectors.keys() == got.vectors.keys()
    for name, vector in ref.vectors.items():
        torch.testing.assert_close(got.vectors[name], vector, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dims", [3, 4])
def test_an_inference_mask_is_read_as_it_comes_inside_a_run(dims, monkeypatch):
    x, plain, served = _masks(dims)
    expected = key_padding(plain, x)  # the uncached read
    calls = _counted(monkeypatch)
    with mask_reads():
        first, again = ablation._read_keys(served, x), ablation._read_keys(served, x)
    assert len(calls) == 2  # not held: no version counter to tell a change in place
    assert torch.equal(first, expected) and torch.equal(again, expected)
    assert torch.equal(expected, _data()[1])  # the keep mask the square one expands: lengths 8, 6, 5, 7, 3, 4
