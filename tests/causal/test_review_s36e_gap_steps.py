"""Review of the change 6d80bcf2: of an observation mask ``[N, T, C]`` read entry by entry, the hidden states' padded
steps were every step where nothing is observed, so on a regular grid a real hour with no measurement (its hidden
states carrying the earlier observations forward, read by the output) was zeroed in the layer map's and the causal
graph's activations as if padding. Only the steps unobserved from there to the end of the series, the padding after
its length, are padding now; the helper's case (a mask 0 in every channel after each length) is unchanged."""

import torch

from lightning_causal.causal.engine.ablation import padding_positions, step_positions


def test_a_gap_inside_a_series_is_no_padded_step():
    mask = torch.ones(3, 6, 2)
    mask[0, 2] = 0  # a real step with nothing measured, observations after it
    mask[0, 4:] = 0  # padding after length 4
    mask[1, 1, 0] = 0  # one channel missing: no gap
    mask[2, 3:] = 0
    values = torch.randn(3, 6, 2) * mask
    steps = step_positions(padding_positions(values, {"attention_mask": mask}))
    expected = torch.arange(6)[None] >= torch.tensor([4, 6, 3])[:, None]
    assert torch.equal(steps, expected)  # before: step 2 of series 0 padding too
