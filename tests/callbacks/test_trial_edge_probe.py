"""Trial "edge": awkward probes in a real fit."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorAudit, CausalAuditCallback, SobolAudit, UnitImportanceAudit
from lightning_causal.data_reading import read_samples
from lightning_causal.models import MLP, LightningClassifier
from tests.helpers.lightning import quick_trainer


def _loaders(x_val: torch.Tensor) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x_val, torch.zeros(len(x_val), dtype=torch.long)), batch_size=2)


@pytest.mark.parametrize("audit", [SobolAudit(n=64), BackdoorAudit(), UnitImportanceAudit(["model.net.0"])],
                         ids=["sobol", "backdoor", "units"])
def test_a_probe_sample_holding_nan_is_named_at_setup(audit):
    # before: SobolAudit failed on "argument `data`", BackdoorAudit on "argument `pattern`" (neither
    # passed by the user), and the other audits logged NaN at every epoch with a warning naming no sample
    x_val = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    x_val[3, 2] = float("nan")
    torch.manual_seed(0)
    module = LightningClassifier(MLP(4, (8,), 3), lr=0.05)
    cb = CausalAuditCallback([audit], probe_size=256)
    with pytest.raises(MisconfigurationException, match=r"probe \(val_dataloaders\).*`probe` to be finite but sample \[3\] of 5"):
        quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(module, *_loaders(x_val))


class ImageAndMeta(pl.LightningModule):
    """``forward(x [N, 4], meta [N, 2])``; the batches are ``(x, meta, y)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.x, self.meta, self.head = nn.Linear(4, 3), nn.Linear(2, 3), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.x(x) + self.meta(meta)))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0], batch[1]), batch[2])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_a_nan_in_a_forward_argument_of_the_probe_is_named():
    # before: the NaN meta row reached every audit as NaN effects, reported at every epoch without a cause
    g = torch.Generator().manual_seed(0)
    x, meta, y = torch.randn(12, 4, generator=g), torch.randn(12, 2, generator=g), torch.randint(0, 3, (12,), generator=g)
    meta_val = meta[:5].clone()
    meta_val[2, 0] = float("nan")
    train = DataLoader(TensorDataset(x, meta, y), batch_size=4)
    val = DataLoader(TensorDataset(x[:5], meta_val, y[:5]), batch_size=2)
    cb = CausalAuditCallback([UnitImportanceAudit(["x"])], unpack_batch=lambda b: (b[0], b[2], (b[1],)))
    with pytest.raises(MisconfigurationException, match=r"sample \[2\] of 5 holds NaN or infinity \(in additional_forward_args\[0\]\)"):
        quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(ImageAndMeta(), train, val)


@pytest.mark.parametrize("probe", [torch.tensor(1.5), (torch.tensor(1.5), torch.tensor(0))], ids=["tensor", "(x, y)"])
def test_a_probe_of_one_number_names_the_missing_batch_dimension(probe):
    # before: IndexError "slice() cannot be applied to a 0-dim tensor" from reading the probe
    cb = CausalAuditCallback([UnitImportanceAudit(["model.net.0"])], probe=probe)
    torch.manual_seed(0)
    with pytest.raises(MisconfigurationException, match=r"batch dimension \[N, \.\.\.\] but got a 0-d tensor"):
        quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(
            LightningClassifier(MLP(4, (8,), 3), lr=0.05), _loaders(torch.randn(4, 4))[0])


def test_a_batch_wide_scalar_in_a_probe_batch_is_kept():
    # before: IndexError slicing the 0-d value of a mapping batch
    batch = read_samples({"x": torch.arange(10.0).view(5, 2), "temperature": torch.tensor(0.5)}, 3)
    assert torch.equal(batch["x"], torch.arange(6.0).view(3, 2)) and float(batch["temperature"]) == 0.5
