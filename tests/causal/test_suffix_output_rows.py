"""The prefix cache's suffix passes check that a callable `output=` keeps one row per row of the pass (as
`Forward.__call__` does): a callable that reads fixed rows failed with torch's bare gather error."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


@pytest.mark.parametrize("use_suffix", [True, False])
def test_a_callable_output_reading_fixed_rows_is_refused_on_every_path(use_suffix):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).double().eval()
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"one row per input row \(\d+\) but got shape \(2, 2\).*row alone"):
        unit_effects(model, x, "1", output=lambda out: out[:2], max_batch_size=4, use_suffix=use_suffix)
