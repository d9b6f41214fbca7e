"""A fit whose validation loader yields episodes (``DataLoader(episodes, batch_size=None)``, each item ``(x_q [30, D],
y_q [30], support_x [15, D], support_y [15])``, a prototypical network's ``forward(x, support_x, support_y)``): the
probe read by the callback joined the first 64 samples' episodes and concatenated their support sets too, ``[45, D]``,
so that every query was scored against prototypes of three episodes' supports, labelled each in its own episode's
classes, in silence; a probe of fewer samples than the support's rows (``probe_size=10``) cut the support set to 10
rows, which then followed the queries by row (refused, naming `mark_whole`, which a loader's batch cannot take). The
tensors of a batch that are no samples' (first dimension other than the samples') are now kept whole: never cut, and
joined across batches only where every batch holds them alike (a codebook), else the probe is the first batch's samples,
with a warning naming ``probe=``."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import input_effects, mark_whole


class ProtoNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))

    def forward(self, x, support_x, support_y):
        s = self.embed(support_x)
        protos = torch.stack([s[support_y == c].mean(0) for c in range(3)])
        return -torch.cdist(self.embed(x), protos) ** 2


def _episodes(n: int = 4) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    classes = torch.arange(3)
    return [(torch.randn(30, 4, generator=g), classes.repeat(10), torch.randn(15, 4, generator=g) + e,
             classes.repeat_interleave(5)) for e in range(n)]


def _probe(size: int, episodes: list) -> tuple[object, list[str]]:
    loader = DataLoader(episodes, batch_size=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = probe_from(loader, size, unpack_batch=lambda b: (b[0], b[1], (b[2], b[3])), origin="val_dataloaders")
    return probe, [str(w.message) for w in caught if "The probe holds" in str(w.message)]


def test_episodes_are_not_joined_and_the_support_set_is_read_whole():
    episodes = _episodes()
    probe, said = _probe(64, episodes)
    x_q, _, support_x, support_y = episodes[0]
    assert len(probe) == 30 and torch.equal(probe.inputs, x_q)  # the first episode's queries
    assert torch.equal(probe.additional_forward_args[0], support_x) and torch.equal(probe.additional_forward_args[1], support_y)
    assert len(said) == 1 and "first 30 samples" in said[0] and "not 64" in said[0] and "mark_whole" in said[0]
    model = ProtoNet().eval()
    effects = input_effects(model, probe.inputs, additional_forward_args=probe.additional_forward_args)
    by_hand = input_effects(model, x_q, additional_forward_args=mark_whole((support_x, support_y), [0, 1]))
    torch.testing.assert_close(effects, by_hand)


@pytest.mark.parametrize("size", [10, 2])
def test_a_probe_of_fewer_samples_than_the_support_keeps_the_support_whole(size):
    episodes = _episodes()
    probe, said = _probe(size, episodes)
    assert len(probe) == size and said == []
    assert torch.equal(probe.additional_forward_args[0], episodes[0][2])  # [15, 4], not its first `size` rows


def test_a_tensor_alike_in_every_batch_is_kept_once_and_the_samples_joined():
    codebook = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))  # a class embedding every batch carries
    episodes = [(x_q, y_q, codebook.clone(), y_s) for x_q, y_q, _, y_s in _episodes()]
    probe, said = _probe(64, episodes)
    assert said == [] and len(probe) == 64
    assert torch.equal(probe.inputs, torch.cat([e[0] for e in episodes])[:64])
    assert torch.equal(probe.additional_forward_args[0], codebook)  # [3, 4], not three copies [9, 4]
