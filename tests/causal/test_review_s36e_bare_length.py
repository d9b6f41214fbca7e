"""Review of the change c77cd2b1 (newuser81's leftover): a padded sequence model whose step counts arrive under a bare
``length`` (a GRU-D batch's ``"length"``, ``forward(x, length)``) had them read as nothing (a bare ``length`` may count
anything, so it is no alias of ``lengths``): every padded step was set, given an effect of its own (0 where the model
packs it away) and counted in InputEffectAudit's means, in silence (mean_abs_effect 0.0052 where the real steps' mean
is 0.0080 on this test's model). It now warns, naming the argument and the ways: ``lengths`` or ``<input>_lengths``."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

N, T, C = 12, 8, 2


class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn, self.head = nn.GRU(C, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x, length):
        return self.head(self.rnn(pack_padded_sequence(x, length, batch_first=True, enforce_sorted=False))[1][-1])


class Named(Packed):
    def forward(self, x, lengths):
        return super().forward(x, lengths)


def _padded():
    g = torch.Generator().manual_seed(0)
    length = torch.randint(3, T + 1, (N,), generator=g)
    return torch.randn(N, T, C, generator=g) * (torch.arange(T)[None] < length[:, None])[..., None], length


@pytest.mark.parametrize("keyword", [False, True])
def test_a_bare_length_of_the_inputs_steps_is_warned_of(keyword):
    x, length = _padded()
    args = {"length": length} if keyword else (length,)
    with pytest.warns(ProbeContentsWarning, match="'length' holds each sample's count.*name the parameter `lengths`"):
        InputEffectAudit(target=0, ace_values=None).run(Packed().eval(), Probe(x, None, args))


def test_no_word_where_the_lengths_are_read_or_count_no_padded_steps():
    x, length = _padded()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InputEffectAudit(target=0, ace_values=None).run(Named().eval(), Probe(x, None, (length,)))  # read as lengths
        whole = torch.full((N,), T)
        InputEffectAudit(target=0, ace_values=None).run(Packed().eval(), Probe(torch.randn(N, T, C), None, (whole,)))
        noisy = torch.randn(N, T, C)  # steps after the counts hold values: no padding of the inputs they count
        InputEffectAudit(target=0, ace_values=None).run(Packed().eval(), Probe(noisy, None, (length,)))
