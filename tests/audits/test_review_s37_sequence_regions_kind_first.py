"""A sequence figure kind names a group's steps as its figure draws them beside an observation mask too: under
figure_kind='sequence_features_last' a [N, 4, 100] input (4 visits of 100 lab values) named its step 2
'steps 0-100, channels 2' where an observation mask of its shape was given, and 'steps 2' without one (review of
7af0f107: the mask's shape guess took precedence over the kind chosen)."""

import torch

from lightning_causal.audits.group_regions import figure_axes, group_region


def test_the_chosen_sequence_kind_names_the_steps_beside_an_observation_mask():
    x, mask = torch.zeros(2, 4, 100), torch.rand(2, 4, 100, generator=torch.Generator().manual_seed(0)) < 0.5
    steps = torch.arange(4).view(1, 4, 1).expand(1, 4, 100)
    with figure_axes("sequence_features_last"):
        assert group_region(steps, 2, x, mask) == group_region(steps, 2, x) == {"steps": [2, 3]}
    channels = torch.arange(12).view(1, 12, 1).expand(1, 12, 4)  # [N, 12, 4] drawn channels first under "sequence"
    x, mask = torch.zeros(2, 12, 4), torch.ones(2, 12, 4, dtype=torch.bool)
    with figure_axes("sequence"):
        assert group_region(channels, 5, x, mask) == group_region(channels, 5, x) == {"steps": [0, 4], "channels": [5, 6]}
    assert group_region(channels, 5, x, mask) == {"steps": [5, 6]}  # no kind: the mask's reading, dimension 1 time
