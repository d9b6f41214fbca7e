"""Trial "edge": awkward probes in a real fit."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorAudit, CausalAuditCallback, SobolAudit, UnitImportanceAudit
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
