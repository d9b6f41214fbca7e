"""Final read of ba2124a4/03ef2836: the weights-changed-after-an-audit check read a tied weight (a language model's
head sharing its embedding's) once per module holding it, the largest tensor summed twice at each of its three readings
per audited epoch. Each parameter is read once now."""

import torch
from torch import nn

from lightning_causal.callbacks._fit_checks import _forward_weights, weight_sums


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.mid, self.head = nn.Embedding(50, 8), nn.Linear(8, 8), nn.Linear(8, 50, bias=False)
        self.head.weight = self.emb.weight


def test_a_tied_weight_is_read_once():
    model = TiedLM()
    names = [n for n, _ in _forward_weights(model)]
    assert names == ["emb.weight", "mid.weight", "mid.bias"]
    names, sums = weight_sums(model)
    assert sums.shape == (3, 2)
    torch.testing.assert_close(sums[0, 0], model.emb.weight.detach().sum())
