"""One audit run reads an attention mask of one matrix per sample once (``ablation.mask_reads``, opened by every
audit's ``run``), through whichever view or alias of it its estimators and warnings hold: an ``InputEffectAudit`` run
read a rows-alike ``[N, 1, T, T]`` mask five times. The reads are the run's (a mask changed in place is read again;
the next run reads afresh), and an undecided sense is warned of once per run, not once per process."""

from __future__ import annotations

import warnings

import torch
from torch import nn

import lightning_causal.causal.engine.ablation as ablation
from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.ablation import mask_reads

N, T = 6, 8


class _Pooled(nn.Module):  # a mean over the real steps, read from the square mask's first row
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)

    def forward(self, x, attention_mask):
        keep = (attention_mask[:, 0, 0] if attention_mask.dim() == 4 else attention_mask).unsqueeze(-1).float()
        return self.fc((x * keep).sum(1) / keep.sum(1))


def _data():
    g = torch.Generator().manual_seed(1)
    keep = torch.arange(T)[None] < torch.tensor([8, 6, 5, 7, 3, 4])[:, None]
    x = torch.randn(N, T, 3, generator=g).masked_fill(~keep[..., None], 0.0)  # the padding one value: Hugging Face's sense
    return x, keep, keep[:, None, None].expand(N, 1, T, T).contiguous()


def _counted(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = ablation.key_padding
    monkeypatch.setattr(ablation, "key_padding", lambda *a: calls.append(1) or real(*a))
    return calls


def test_one_run_reads_the_mask_once_and_as_its_keep_mask(monkeypatch):
    x, keep, square = _data()
    calls = _counted(monkeypatch)
    fm = torch.arange(T)[:, None].expand(1, T, 3)
    square_result = InputEffectAudit(feature_mask=fm, target=1).run(_Pooled(), Probe(x, additional_forward_args={"attention_mask": square}))
    assert len(calls) == 1
    flat = InputEffectAudit(feature_mask=fm, target=1).run(_Pooled(), Probe(x, additional_forward_args={"attention_mask": keep}))
    for name, vector in flat.vectors.items():  # read as the keep mask [N, T] it expands: the padding left out alike
        torch.testing.assert_close(square_result.vectors[name], vector, equal_nan=True)
    InputEffectAudit(feature_mask=fm, target=1).run(_Pooled(), Probe(x, additional_forward_args={"attention_mask": square}))
    assert len(calls) == 2  # the next run reads afresh


def test_a_run_reads_views_once_and_a_changed_mask_again(monkeypatch):
    x, keep, square = _data()
    calls = _counted(monkeypatch)
    with mask_reads():
        first = ablation._read_keys(square, x)
        assert ablation._read_keys(square.detach(), x) is first and len(calls) == 1  # an alias: the same values
        square[0, ..., 6:] = False  # in place (sample 0 padded from step 6): read again
        x[0, 6:] = 0.0
        again = ablation._read_keys(square, x)
        assert len(calls) == 2 and again[0].tolist() == [True] * 6 + [False] * 2 and torch.equal(again[1:], first[1:])
    ablation._read_keys(square, x)
    assert len(calls) == 3  # outside a run: read as it comes


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * 5, 2)

    def forward(self, x, attention_mask):
        return self.lin(x.flatten(1))


def test_an_undecided_sense_is_warned_once_per_run():
    keep = torch.arange(5)[None] < torch.tensor([5, 3, 1])[:, None]
    mask = (~keep[:, None]).expand(3, 5, 5)
    x = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))  # its padding holds no one value
    fm = torch.arange(5)[:, None].expand(1, 5, 2)
    for _ in range(2):  # each run says it, once (before: once per process)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            InputEffectAudit(feature_mask=fm, target=1).run(_Masked().eval(), Probe(x, additional_forward_args={"attention_mask": mask}))
        assert len([w for w in caught if "no diagonal to tell its sense" in str(w.message)]) == 1
