"""5ccde729's first-batch check of CausalRepairModule's default task_step runs one pass of n - 1 rows where the
explained output is [n, n] beside labels not arange(n): a classifier of 8 classes on batches of 8 rows reaches it and
trains on. That pass must leave the model as it found it: a buffer its forward writes in place at every call (a
running normaliser, eval mode too), a call counter and a generator the model holds were changed by it (the pass
restored modes, global random states and reassigned attributes only). Labels arange(8) skip the pass: the same
batches with such labels give the state the check must leave (the weights differ with the labels)."""

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


class Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(6, 16), nn.Linear(16, 8)  # 8 classes
        self.register_buffer("mean", torch.zeros(6))
        self.calls, self.gen = 0, torch.Generator().manual_seed(1)

    def forward(self, x):
        with torch.no_grad():
            self.mean.mul_(0.9).add_(0.1 * x.mean(0))  # in eval mode too
        self.calls += 1
        h = self.l1(x - self.mean) + 0.01 * torch.randn(x.shape[0], 16, generator=self.gen)
        return self.l2(F.relu(h)) * (1 + 0.01 * (self.calls % 3))


def fit(labels):
    model = Stateful()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0))],
                                unpack_batch=lambda b: (b[0], b[1], None))
    opt = torch.optim.SGD(repair.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.rand(8, 6, generator=g)
        x[:, 0] = (x[:, 0] > 0.5).float()
        total, _ = repair.objective((x, labels))
        opt.zero_grad()
        total.backward()
        opt.step()
    return model


def test_the_checks_pass_leaves_buffers_counters_and_generators_as_found():
    checked, skipped = fit(torch.tensor([3, 1, 0, 2, 7, 5, 6, 4])), fit(torch.arange(8))
    assert checked.calls == skipped.calls and torch.equal(checked.mean, skipped.mean)
    assert torch.equal(checked.gen.get_state(), skipped.gen.get_state())
