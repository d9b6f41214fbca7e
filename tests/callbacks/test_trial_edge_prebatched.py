"""Trial "edge": validation data whose dataset items are batches already (``DataLoader(batch_size=None)``:
no auto-collation; the last batch of one sample). The callback read items as samples and failed with
"cannot read the probe batch: ... a list of 3 items"; it now reads batches until they hold
``probe_size`` samples, in the loader's order."""

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.data_reading import read_samples
from lightning_causal.models import MLP, LightningClassifier
from tests.helpers.lightning import quick_trainer


class Batches(Dataset):
    """Three batches of 4, 4 and 1 samples, each ``(x [B, 4], y [B])``."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(9, 4, generator=g), torch.randint(0, 3, (9,), generator=g)
        self.bounds = [(0, 4), (4, 8), (8, 9)]

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.bounds[i]
        return self.x[a:b], self.y[a:b]


def test_read_samples_of_a_loader_of_batches():
    data = Batches()
    x, y = read_samples(DataLoader(data, batch_size=None), 6)
    assert torch.equal(x, data.x[:6]) and torch.equal(y, data.y[:6])
    x, _ = read_samples(DataLoader(data, batch_size=None), 256)  # more than there are: all 9, the last batch of 1 too
    assert torch.equal(x, data.x)


def test_the_callback_explains_the_first_samples_of_a_loader_of_batches():
    torch.manual_seed(0)
    data = Batches()
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=6)
    train = DataLoader(TensorDataset(torch.randn(16, 4), torch.randint(0, 3, (16,))), batch_size=8)
    quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(
        LightningClassifier(MLP(4, (8,), 3), lr=0.01), train, DataLoader(data, batch_size=None))
    assert torch.equal(cb.probe.first, data.x[:6]) and torch.equal(cb.probe.labels, data.y[:6])
