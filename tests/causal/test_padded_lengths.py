"""Packed sequences: a model ``forward(x, lengths)`` that runs ``pack_padded_sequence`` reads no
padded step. Given ``lengths`` as a keyword forward argument, padded steps get no effect, are left
out of the ACE's quantiles and means, and the audit's summaries average the samples that reach each
group, so that they do not change with the padding length (they were diluted by the short samples'
zeros: steps 6-11 of a length-dependent rule ranked third instead of first)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_causal.audits import CaptumBaseline, InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import average_causal_effect, input_effects, layer_causal_map
from tests.helpers.models import seeded

LENGTHS = torch.tensor([5, 2, 3, 5, 1, 4])


class PackedGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x, lengths):
        _, h = self.gru(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
        return self.head(h[-1])


def _padded(t: int) -> torch.Tensor:
    """The same six sequences ``[6, t, 2]`` zero-padded to ``t >= 5`` steps."""
    x = torch.randn(6, 5, 2, generator=torch.Generator().manual_seed(0))
    x = x * (torch.arange(5).view(1, 5, 1) < LENGTHS.view(6, 1, 1))
    return torch.cat([x, torch.zeros(6, t - 5, 2)], 1)


def _brute(model: nn.Module, x: torch.Tensor, step: int, value: float, pred: torch.Tensor) -> torch.Tensor:
    """f_pred(x | do(x_step := value)) per sample, by editing the input."""
    z = x.clone()
    z[:, step] = value
    with torch.no_grad():
        return model(z, LENGTHS).gather(1, pred.view(-1, 1))[:, 0]


@pytest.mark.parametrize("args", [{"lengths": LENGTHS}, (LENGTHS,)], ids=["keyword", "positional"])
def test_audit_means_count_the_samples_that_reach_each_step_whatever_the_padding(args):
    model = seeded(PackedGRU()).eval()
    runs = {}
    for t in (5, 8):
        x = _padded(t)
        mask = torch.arange(t).view(1, t, 1)  # one group per time step
        runs[t] = InputEffectAudit(mask, ace_values=3, top_k=3).run(model, Probe(x, additional_forward_args=args))
    x = _padded(5)
    with torch.no_grad():
        pred = model(x, LENGTHS).argmax(1)
        f0 = model(x, LENGTHS).gather(1, pred.view(-1, 1))[:, 0]
    effects = torch.stack([f0 - _brute(model, x, s, 0.0, pred) for s in range(5)], 1)  # [N, T]
    real = torch.arange(5).view(1, 5) < LENGTHS.view(6, 1)
    assert effects[~real].abs().max() == 0.0  # the model reads no padded step
    want = (effects.abs() * real).sum(0) / real.sum(0)
    torch.testing.assert_close(runs[5].vectors["mean_abs_effect"], want, atol=1e-6, rtol=0)
    torch.testing.assert_close(runs[8].vectors["mean_abs_effect"][:5], want, atol=1e-6, rtol=0)
    assert runs[8].vectors["mean_abs_effect"][5:].abs().max() == 0.0
    assert runs[8].scalars == pytest.approx(runs[5].scalars, abs=1e-6)
    assert [r["group"] for r in runs[8].tables["top_groups"]] == [r["group"] for r in runs[5].tables["top_groups"]]
    torch.testing.assert_close(runs[8].vectors["ace_range"][:5], runs[5].vectors["ace_range"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("args", [{"lengths": LENGTHS}, (LENGTHS,)], ids=["keyword", "positional"])
def test_ace_over_lengths_equals_brute_force_over_the_samples_that_reach_each_step(args):
    model = seeded(PackedGRU()).eval()
    x = _padded(7)
    with torch.no_grad():
        pred = model(x, LENGTHS).argmax(1)
    mask = torch.arange(7).view(1, 7, 1)
    ace = average_causal_effect(model, x, mask, num_values=3, additional_forward_args=args)
    assert input_effects(model, x, mask, additional_forward_args=args)[:, 5:].abs().max() == 0.0
    for step in range(7):
        rows = LENGTHS > step
        if not rows.any():
            assert ace[step].abs().max() == 0.0
            continue
        values = torch.quantile(x[rows, step].flatten(), torch.linspace(0.05, 0.95, 3))  # real elements only
        mu = torch.stack([_brute(model, x, step, float(v), pred)[rows].mean() for v in values])
        torch.testing.assert_close(ace[step], mu - mu.mean(), atol=1e-6, rtol=0)


class PackedLSTM(nn.Module):
    """``forward(x, lengths)`` over a packed LSTM; the lengths are a positional parameter."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x, lengths):
        _, (h, _) = self.lstm(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
        return self.head(h[-1])


def test_positional_lengths_named_by_the_forward_signature_are_padding_as_the_keyword_is():
    model = seeded(PackedLSTM()).eval()
    x = _padded(7)
    mask = torch.arange(7).view(1, 7, 1)
    padded = torch.arange(7).view(1, 7) >= LENGTHS.view(6, 1)
    got = input_effects(model, x, mask, additional_forward_args=(LENGTHS,))
    with torch.no_grad():
        pred = model(x, LENGTHS).argmax(1)
        f0 = model(x, LENGTHS).gather(1, pred.view(-1, 1))[:, 0]
    brute = torch.stack([f0 - _brute(model, x, s, 0.0, pred) for s in range(7)], 1)
    torch.testing.assert_close(got, brute, atol=1e-6, rtol=0)
    assert got[padded].abs().max() == 0.0  # exactly: padded rows are not run (they were run, giving ~1e-8)
    assert torch.equal(got, input_effects(model, x, mask, additional_forward_args={"lengths": LENGTHS}))
    mu_pos = average_causal_effect(model, x, mask, num_values=3, additional_forward_args=(LENGTHS,))
    mu_kw = average_causal_effect(model, x, mask, num_values=3, additional_forward_args={"lengths": LENGTHS})
    torch.testing.assert_close(mu_pos, mu_kw, atol=0, rtol=0)  # the quantiles and means leave the padding out


def test_captum_baseline_reads_positional_lengths_as_the_keyword():
    model = seeded(PackedGRU()).eval()
    x = _padded(8)
    audit = CaptumBaseline(methods=("Saliency",), feature_mask=torch.arange(8).view(1, 8, 1))
    kw = audit.run(model, Probe(x, additional_forward_args={"lengths": LENGTHS}))
    pos = audit.run(model, Probe(x, additional_forward_args=(LENGTHS,)))
    assert pos.scalars == pytest.approx(kw.scalars, abs=1e-6)  # padded steps 5-7 left out of every metric in both


class ProjectedGRU(PackedGRU):
    """A Linear on every step before the packed GRU (a layer the layer map can trace)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(2, 2)

    def forward(self, x, lengths):
        return super().forward(self.inp(x), lengths)


def test_layer_map_reads_positional_lengths_as_the_keyword():
    model = seeded(ProjectedGRU()).eval()
    x, mask = _padded(7), torch.arange(7).view(1, 7, 1)
    kw = layer_causal_map(model, x, mask, layers=["inp", "head"], additional_forward_args={"lengths": LENGTHS})
    pos = layer_causal_map(model, x, mask, layers=["inp", "head"], additional_forward_args=(LENGTHS,))
    assert pos.to_dict() == kw.to_dict()  # padded steps keep their values in both (before 3a4e772 they did not)
