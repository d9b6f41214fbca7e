"""A channel mask that broadcasts over time, ``torch.arange(C).reshape(1, C, 1)`` (the audit accepts it, as
docs/your_model.md's masks of one group per row do), named no channels: an EEG heatmap's rows kept their indices though
``feature_names=`` named the electrodes. It names them as the same mask expanded over time does (the heatmap's row
ticks: ``test_review_s40_nu98_channel_names.py``, whose first test runs this mask too)."""

import torch

from tests.reporting.test_review_s40_nu98_channel_names import _figure


def test_a_broadcast_mask_names_features_last_and_permuted_channels():
    result, _ = _figure((6, 64, 5), torch.arange(5).reshape(1, 1, 5), list("abcde"))
    assert result.meta["last_names"] == list("abcde") and "channel_names" not in result.meta
    result, _ = _figure((6, 3, 64), torch.tensor([2, 0, 1]).reshape(1, 3, 1), ["C3", "Cz", "C4"])
    assert result.meta["channel_names"] == ["C4", "C3", "Cz"]
    result, _ = _figure((6, 3, 64), torch.tensor([0, 0, 1]).reshape(1, 3, 1), ["a", "b"])  # two channels in one group
    assert "channel_names" not in result.meta
