"""graph_stability's noisy copies: ``noise`` standard deviations of each input column, not of the whole probe.

The noise was ``noise · x.std()``, the std of every entry of the probe together. On a table whose columns have
other scales (here sd 1 and sd 1000) that std is sqrt((1 + 1000^2) / 2) = 707, so at the default noise 0.05 the
column of sd 1 was moved by 35 of its standard deviations, and ``noise_jaccard`` measured the graph on noise,
not near the probe (CausalGraphAudit's ``stability_noise``). Each column now gets ``noise`` of its own sd.
"""

import torch
from torch import nn

from lightning_causal.causal import graph_stability


def test_the_noise_is_scaled_by_each_columns_own_standard_deviation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0) * torch.tensor([1.0, 1000.0], dtype=torch.float64)  # column sds exactly 1 and 1000
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    seen: list[torch.Tensor] = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()) if isinstance(args[0], torch.Tensor) else None)
    graph_stability(model, x, ["1"], top_k=2, resamples=1, noise=0.05, seed=0)
    rows = {tuple(r) for r in x.tolist()}
    noisy = [z for z in seen if z.shape == x.shape and not any(tuple(r) in rows for r in z.tolist())]
    assert noisy, "no noisy copy of the probe reached the model"
    for z in noisy:
        sd = (z - x).std(0)  # the noise added to each column
        # 0.05 and 50 (before: 35.4 for both, 0.05 * 707); 400 draws: within 15% of the sd
        assert torch.allclose(sd, torch.tensor([0.05, 50.0], dtype=torch.float64), rtol=0.15), sd
