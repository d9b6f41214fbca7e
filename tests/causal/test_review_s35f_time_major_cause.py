"""Review of 4baf6de0 (newuser75): the batch-dependence refusal of a model whose output is laid out time first,
``[T, N, C]``, blamed ``output=`` ("reshapes or reduces its output across the samples") wherever ``output=`` was a
callable, also ``out[t]``, which keeps every sample apart, where the model itself depends on its batch: the cause now
names ``output=`` only where it reads across the samples (``output_selection.reads_across_samples``). And a recurrent
layer's final state ``h_n`` ``[layers, N, H]``, which the layout check takes for time steps, is named in the advice."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.output_selection import reads_across_samples

N, T, FEATS, CLASSES = 4, 9, 5, 4


class BatchNormalisedTimeMajor(nn.Module):
    """Log-probabilities [T, N, C] of inputs normalised by the batch's mean: the batch is the model's doing."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(FEATS, 6)
        self.out = nn.Linear(6, CLASSES)

    def forward(self, x):
        h, _ = self.gru((x - x.mean(0, keepdim=True)).transpose(0, 1))
        return self.out(h).log_softmax(-1)


def test_a_step_of_a_batch_dependent_model_is_not_blamed_on_output():
    x = torch.randn(N, T, FEATS, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="treat samples independently") as err:
        input_effects(BatchNormalisedTimeMajor().eval(), x, target=1, output=lambda out: out[3])
    assert "`output=` reshapes" not in str(err.value) and "depends on the batch" in str(err.value)


def test_reads_across_samples_tells_the_ways_apart():
    raw = torch.randn(T, 2, CLASSES, generator=torch.Generator().manual_seed(1))
    keeps = [lambda o: o[3], lambda o: o.transpose(0, 1)[:, 2:5].mean(1), lambda o: o[-1].exp()]
    mixes = [lambda o: o.view(-1, T, CLASSES).mean(1), lambda o: o.mean(1), lambda o: o.reshape(2, -1)]
    assert [reads_across_samples(f, raw) for f in keeps] == [False] * 3
    assert [reads_across_samples(f, raw) for f in mixes] == [True] * 3


class FinalState(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(FEATS, 6, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.gru(x)[1]  # h_n [2, N, 6]


def test_a_recurrent_final_state_is_named_beside_time_steps():
    x = torch.randn(N, T, FEATS, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"h_n \[layers x directions, N, H\], its layers: `output=lambda out: out\[-1\]`"):
        input_effects(FinalState().eval(), x, target=1)
