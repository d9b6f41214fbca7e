"""A probe of 3 samples has one pass of rows alone (``checked_rows(3)``: rows 0 and 1), so the whole probe reversed is
the second pass, not the third: the refusal of a capacity-limited router then said probe samples [2, 0] "run alone"
differ (sample 2 never ran alone), with the batch advice instead of the place's (reread of the session's change)."""

import pytest
import torch

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from tests.causal.test_mends_s43a_capacity_routing import _Capacity


def test_the_reversed_pass_of_a_three_sample_probe_is_named_as_such():
    n = 3
    model = _Capacity(0.1).eval()
    x = torch.full((n, 2), 0.1) + torch.arange(float(n))[:, None] / 100
    x[:, 0] = 1.0  # every row routed to expert 0: the rows past its capacity are dropped
    with pytest.raises(ValueError) as err:
        check_samples_independent(Forward(model, num_samples=n), (x,), model(x), "T")
    said = str(err.value)
    assert "[0, 2] run in one pass of the whole probe in the reverse order" in said, said[:300]
    assert "place among" in said  # the place's cause and way out, not the batch's
