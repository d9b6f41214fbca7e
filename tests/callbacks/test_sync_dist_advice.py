"""Lightning advises ``self.log(name, ..., sync_dist=True)`` for every epoch-level scalar logged without it while a
process group is up (``trainer/connectors/logger_connector/result.py``, from 2.5.0 to 2.6.6 alike). The audit callback
silences that advice for its own ``causal/...`` and ``compare/...`` scalars (every rank holds the same values) by
the advice's text: a fit in a process group (gloo, one process: Lightning gives the advice whenever one is up)
checks the filter against the message Lightning really prints, so that a change of its wording fails here."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._fit_checks import quiet_sync_dist_advice
from tests.helpers.lightning import quick_trainer

_ADVICE = "It is recommended to use `self.log("


class _Logged(LightningModule):
    """A linear classifier that logs its own epoch-level validation scalar (``val/acc_s25``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):  # noqa: ANN001
        x, y = batch
        self.log("val/acc_s25", (self(x).argmax(1) == y).float().mean(), on_epoch=True)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture
def process_group(tmp_path):
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed and no process group up already")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_the_advice_is_silenced_for_the_callbacks_scalars_and_kept_for_the_users(process_group):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    # an audit named with an apostrophe: Lightning's repr of the tag quotes it with double quotes
    audits = [InputEffectAudit(ace_values=None, name="ie_s25"), InputEffectAudit(ace_values=None, name="user's_ie_s25")]
    cb = CausalAuditCallback(audits, probe_size=8)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_sync_dist_advice()  # what the callback's setup does where the trainer's world size is above 1
        quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(_Logged(), loader, loader)
    advised = [str(w.message) for w in seen if issubclass(w.category, PossibleUserWarning) and str(w.message).startswith(_ADVICE)]
    assert cb.audited_epochs == [0] and "causal/user's_ie_s25/mean_abs_effect" in cb.last_scalars
    assert any("'val/acc_s25'" in m for m in advised)  # Lightning advised on the user's own scalar: the group was up
    assert [m for m in advised if "causal/" in m or "compare/" in m] == []
