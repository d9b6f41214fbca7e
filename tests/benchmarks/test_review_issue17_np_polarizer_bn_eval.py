"""Review of 374319be: ``backdoor_np.py`` documents its one departure from the paper's code, the polarizer's
``BatchNorm2d`` kept in eval mode through the warm-up and the training (the paper's code warms up in train mode, which
leaves the running statistics at the features'). This pins what the docstring and RESULTS.md say: after training, the
running statistics are still the fresh 0 and 1 and the BatchNorm has counted no batch."""

from __future__ import annotations

import torch

from benchmarks import backdoor_np as npd
from lightning_causal.models import DigitsCNN


def test_the_polarizers_batchnorm_keeps_its_fresh_statistics_through_training():
    torch.manual_seed(3)
    model = DigitsCNN().eval()
    x, y = torch.rand(40, 1, 8, 8) * 0.5 + 0.3, torch.randint(0, 10, (40,))  # features far from mean 0, variance 1
    net, _ = npd.train_polarizer(model, "pool1", x, y, 2, 0.01, 3.0, seed=0)
    bn = net.pool1[1][1]
    assert isinstance(bn, torch.nn.BatchNorm2d) and not bn.training
    assert torch.equal(bn.running_mean, torch.zeros(16)) and torch.equal(bn.running_var, torch.ones(16))
    assert int(bn.num_batches_tracked) == 0
