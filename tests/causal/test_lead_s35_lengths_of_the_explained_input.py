"""Final read of session 35 (git diff c92c0aac): 80b40f84 reads the explained input's own ``<input>_len`` as its lengths,
"through a ChosenInput too" — it was not: the input's name was read from a call of the inputs alone, so a ChosenInput's
other inputs were missing and the explained input took forward's first parameter's name (``forward(meta, utt,
utt_len)`` explaining ``utt``: named ``meta``, ``utt_len`` unread, the padded frames set and given effects). And where
two names qualified, the first in forward's order won: ``forward(x, y, x_lens, y_lens)`` explaining ``y`` read
``x_lens`` as ``y``'s lengths. The input is named with the other arguments in their places, its own counts come first,
and another parameter's counts (``x_lens`` of forward's ``x``) are never the explained input's."""
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_arguments
from lightning_causal.causal.engine.chosen_input import ChosenInput


class MetaAndUtterance(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 3), nn.Linear(5, 3)

    def forward(self, meta, utt, utt_len):
        return self.a(meta).mean(1) + self.b(utt).mean(1)


class TwoSequences(nn.Module):
    def forward(self, x, y, x_lens, y_lens):
        return x.mean((1, 2))[:, None] + y.mean((1, 2))[:, None]


def test_a_chosen_inputs_own_counts_pad_its_frames():
    torch.manual_seed(0)
    n, t = 4, 9
    meta, utt, utt_len = torch.randn(n, 2, 5), torch.randn(n, t, 5), torch.tensor([9, 5, 3, 7])
    model = ChosenInput(MetaAndUtterance().eval(), 1, 2)
    effects = input_effects(model, utt, torch.arange(t).reshape(1, t, 1).expand(1, t, 5), target=1,
                            additional_forward_args=(meta, utt_len))
    padded = torch.arange(t)[None, :] >= utt_len[:, None]
    assert bool((effects[padded] == 0).all()) and bool((effects[~padded] != 0).all())


def test_the_explained_inputs_own_counts_come_first():
    x_lens, y_lens = torch.tensor([3, 2]), torch.tensor([1, 4])
    found = padding_arguments(TwoSequences(), (torch.zeros(2, 4, 1), x_lens, y_lens), num_inputs=1)
    assert found["lengths"] is x_lens  # explaining x (the first parameter): its own counts
    chosen = ChosenInput(TwoSequences(), 1, 2)
    found = padding_arguments(chosen, (torch.zeros(2, 4, 1), x_lens, y_lens), num_inputs=1)
    assert found["lengths"] is y_lens
