"""An episode batch whose first tensor is its support set (``{"support": [6, 3], "support_y": [6], "x": [10, 3], "y":
[10]}``): the probe reader took the first tensor's rows as the samples, so ``probe_size=4`` cut the support set to 4 rows
and kept the 10 queries whole, in silence, and a probe of more samples than the episode holds was said to hold "the
first 6 samples" where its inputs are the 10 queries (review_newuser105 §4.2, §4.3). The samples are now counted on the
input the model explains (``unpack``'s first input)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import mark_whole


def _episodes(n: int = 3) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [{"support": torch.randn(6, 3, generator=g), "support_y": torch.arange(2).repeat(3),
             "x": torch.randn(10, 3, generator=g), "y": torch.randint(0, 2, (10,), generator=g)} for _ in range(n)]


def _unpack(batch: dict) -> tuple:
    return batch["x"], batch["y"], mark_whole((batch["support"], batch["support_y"]), [0, 1])


def _read(source: object, size: int) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = probe_from(source, size, unpack_batch=_unpack)
    return probe, [str(w.message) for w in caught if "The probe holds" in str(w.message)]


@pytest.mark.parametrize("loader", [True, False], ids=["loader_of_episodes", "one_episode_batch"])
def test_support_first_is_kept_whole_and_the_queries_cut(loader: bool) -> None:
    episodes = _episodes()
    probe, said = _read(DataLoader(episodes, batch_size=None) if loader else episodes[0], 4)
    assert torch.equal(probe.inputs, episodes[0]["x"][:4]) and torch.equal(probe.labels, episodes[0]["y"][:4])
    support, support_y = probe.additional_forward_args
    assert torch.equal(support, episodes[0]["support"]) and torch.equal(support_y, episodes[0]["support_y"])
    assert not said


def test_more_samples_than_an_episode_counts_its_queries() -> None:
    episodes = _episodes()
    probe, said = _read(DataLoader(episodes, batch_size=None), 25)
    assert torch.equal(probe.inputs, episodes[0]["x"])
    assert len(said) == 1 and "first 10 samples" in said[0] and "not 25" in said[0]


def test_default_unpack_counts_the_input_key() -> None:
    episodes = _episodes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unread support keys are warned of
        probe = probe_from(DataLoader(episodes, batch_size=None), 25)
    assert torch.equal(probe.inputs, episodes[0]["x"])
