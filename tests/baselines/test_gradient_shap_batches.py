"""GradientShap outside a NoiseTunnel runs its N x n_samples rows in passes of at most max_batch_size rows (Captum's
own _batched_operator over its gradients; every draw is made before them), the numbers those of its single pass."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.captum_methods import attribute


class _Scaled(nn.Module):
    """A small MLP whose output each sample's own forward argument scales (a per-sample tensor Captum expands)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))

    def forward(self, x, scale):
        return self.net(x) * scale.unsqueeze(1)


def _run(model, x, scale, max_batch_size, method="GradientShap"):
    sizes = []
    handle = model.net[0].register_forward_hook(lambda _m, i, _o: sizes.append(i[0].shape[0]))
    try:
        out = attribute(model, x, (method, {"n_samples": 16}), target=1, generator=0, max_batch_size=max_batch_size,
                        additional_forward_args=(scale,))
    finally:
        handle.remove()
    return out, sizes


@pytest.mark.parametrize("max_batch_size", [1, 10, 32])
def test_passes_stay_within_the_budget_and_the_numbers_are_the_single_pass_ones(max_batch_size):
    torch.manual_seed(0)
    model, x, scale = _Scaled(), torch.randn(6, 5), torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0, 1.5])
    whole, sizes = _run(model, x, scale, 10**6)
    assert max(sizes) == 6 * 16  # the reference: one pass of every row
    chunked, sizes = _run(model, x, scale, max_batch_size)
    assert max(sizes) <= max(max_batch_size, 6)  # the clean pass over the 6 samples runs whole, as every method's
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-7)
    assert not torch.equal(chunked, torch.zeros_like(chunked))


def test_the_budget_is_measured_by_one_trial_pass():
    # max_batch_size=None: rows_per_pass measures the rows by a trial pass over the first 4 samples; the batching of the
    # gradients uses the rows the other knobs were sized by, not a second trial
    torch.manual_seed(0)
    model, x, scale = _Scaled(), torch.randn(6, 5), torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0, 1.5])
    _, sizes = _run(model, x, scale, None)
    assert sizes.count(4) == 1 and sizes[-1] == 6 * 16  # one trial; the 96 rows fit the measured budget in one pass
