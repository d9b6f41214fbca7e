"""AuditRun._run warned "CausalAuditCallback found no probe data (no probe, no validation or training data); skipping"
where the callback had no probe at an epoch's end, and on_train_start left the probe None where it found no data to read
it from. No fit reaches either: Lightning runs no training, on_train_start included, where the training data has no
batch (an empty dataset, [], {}, limit_train_batches=0: /tmp/leftovers_s28b/t6.py), and sets the training dataloader
whenever it trains. The warning is gone; the one place the probe's source can be missing, on_train_start called with a
Trainer that holds no data (outside a fit), names it instead of leaving a probe of None for the audits."""

import pytest
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from tests.helpers.lightning import trainer


class _Model(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, 2)


def test_no_data_to_read_the_probe_from_is_named_at_the_training_start(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)])
    with pytest.warns(UserWarning, match="has no length"), pytest.raises(
            MisconfigurationException, match=r"found no data to read its probe from at the training's start \(no `probe=`"):
        cb.on_train_start(trainer(tmp_path), _Model())
    assert cb.probe is None
