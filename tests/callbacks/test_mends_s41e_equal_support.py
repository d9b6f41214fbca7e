"""A loader of episodes whose support set has as many rows as the queries (3-way 5-shot with 5 queries a class: both
``[15, D]``): the probe reader told the support set from the samples only by its rows, so that a support marked whole by
``unpack_batch`` (``mark_whole``) was joined across episodes (``[60, 4]``: every query scored against four episodes'
prototypes, in silence) and cut to ``probe_size`` rows (final_read_B F4). The tensors the unpacking marks whole are now
never cut nor joined (also where ``unpack_batch`` copies them: found by their values); an unmarked one, which its rows do not tell from a mask, is read by row as before and the audits'
refusal names the mark in ``unpack_batch``; an ``(x, mask, y)`` loader is read as before."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import input_effects, mark_whole
from lightning_causal.data_reading import read_samples
from tests.callbacks.test_trial_newuser105_episode_probe import ProtoNet


def _episodes(n: int = 4) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    classes = torch.arange(3)
    return [(torch.randn(15, 4, generator=g), classes.repeat(5), torch.randn(15, 4, generator=g) + e,
             classes.repeat_interleave(5)) for e in range(n)]


def _marked(b: tuple) -> tuple:
    return b[0], b[1], mark_whole((b[2], b[3]), [0, 1])


def _read(source: object, size: int, unpack_batch: object) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = probe_from(source, size, unpack_batch=unpack_batch, origin="val_dataloaders")
    return probe, [str(w.message) for w in caught if "The probe holds" in str(w.message)]


def _copied(b: tuple) -> tuple:  # an unpack_batch that copies the support it marks: found by its values
    return b[0], b[1], mark_whole((b[2].clone(), b[3].clone()), [0, 1])


@pytest.mark.parametrize("unpack_batch", [_marked, _copied], ids=["marked", "marked_copies"])
def test_a_marked_support_of_the_queries_rows_is_neither_joined_nor_cut(unpack_batch: object):
    episodes = _episodes()
    probe, said = _read(DataLoader(episodes, batch_size=None), 64, unpack_batch)
    x_q, _, support_x, support_y = episodes[0]
    assert torch.equal(probe.inputs, x_q)  # the first episode's 15 queries, not four episodes' 60
    assert torch.equal(probe.additional_forward_args[0], support_x) and torch.equal(probe.additional_forward_args[1], support_y)
    assert len(said) == 1 and "first 15 samples" in said[0] and "mark_whole" in said[0]
    model = ProtoNet().eval()
    effects = input_effects(model, probe.inputs, additional_forward_args=probe.additional_forward_args)
    by_hand = input_effects(model, x_q, additional_forward_args=mark_whole((support_x, support_y), [0, 1]))
    torch.testing.assert_close(effects, by_hand)


@pytest.mark.parametrize("unpack_batch", [_marked, _copied], ids=["marked", "marked_copies"])
@pytest.mark.parametrize("loader", [True, False], ids=["loader_of_episodes", "one_episode_batch"])
def test_a_probe_of_fewer_samples_keeps_the_marked_support_whole(loader: bool, unpack_batch: object):
    episodes = _episodes()
    probe, said = _read(DataLoader(episodes, batch_size=None) if loader else episodes[0], 10, unpack_batch)
    assert torch.equal(probe.inputs, episodes[0][0][:10]) and said == []
    assert torch.equal(probe.additional_forward_args[0], episodes[0][2])  # [15, 4], not its first 10 rows
    assert torch.equal(probe.additional_forward_args[1], episodes[0][3])


def test_an_unmarked_support_of_the_queries_rows_is_refused_naming_the_mark_in_unpack_batch():
    episodes = _episodes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(DataLoader(episodes, batch_size=None), 64, unpack_batch=lambda b: (b[0], b[1], (b[2], b[3])))
    with pytest.raises(ValueError, match=r"unpack_batch.*mark_whole\(\(b\[2\], b\[3\]\), \[0, 1\]\)"):
        input_effects(ProtoNet().eval(), probe.inputs, additional_forward_args=probe.additional_forward_args)


@pytest.mark.parametrize("unpack_batch", [lambda b: (b[0], b[2], (b[1],)), lambda b: (b[0], b[2], {"mask": b[1]})],
                         ids=["positional", "keyword"])
def test_a_loader_of_inputs_masks_and_labels_is_read_as_before(unpack_batch: object):
    g = torch.Generator().manual_seed(2)
    items = [(torch.randn(8, 5, 2, generator=g), torch.randint(0, 2, (8, 5), generator=g), torch.arange(8) % 2)
             for _ in range(3)]
    probe, said = _read(DataLoader(items, batch_size=None), 20, unpack_batch)
    joined = [torch.cat([item[i] for item in items])[:20] for i in range(3)]
    assert said == [] and torch.equal(probe.inputs, joined[0]) and torch.equal(probe.labels, joined[2])
    args = probe.additional_forward_args
    assert torch.equal(args[0] if isinstance(args, tuple) else args["mask"], joined[1])  # the masks joined and cut with their samples
    assert all(torch.equal(a, b) for a, b in zip(read_samples(DataLoader(items, batch_size=None), 20), joined))
