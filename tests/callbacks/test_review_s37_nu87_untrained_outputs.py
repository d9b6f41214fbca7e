"""Review of newuser87's energy and 0/1-set warnings (0ec0d598, 1ef8852d): what an untrained model says is no energy.

The callback's set-up pass runs before the first training step. An ordinary binary classifier's random head puts its
argmax on the wrong class for most samples about one fit in four (untrained MLPs on two separated blobs: 53 of 200
seeds met ``lower_is_likelier``'s rule), so a cross-entropy classifier that then trained to accuracy 1 was told its
logits "look like energies" and to pass ``output=lambda out: -out``, which would have made every audit read it
backwards. The callback now judges the direction at its audit epochs only (each checks again), not at set-up.

A head initialised to zeros (a linear probe's, big_vision's ViT head) returns only 0s before training: read as empty
0/1 prediction sets. An output without a 1 is no set.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model
from lightning_causal.audits.logit_reads import set_rows


def _blobs(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    return torch.randn(n, 4, generator=g) + 3.0 * (2 * y[:, None] - 1) * torch.tensor([1.0, 0, 0, 0]), y


class Backwards(pl.LightningModule):
    """A cross-entropy classifier (logits) whose initial head points the wrong way: argmin = label before training."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(x)

    def training_step(self, batch, _):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _said(caught) -> list[str]:
    return [str(w.message) for w in caught if "SMALLEST" in str(w.message) or "only 0s and 1s" in str(w.message)]


def test_a_classifier_backwards_before_training_is_not_told_it_returns_energies(tmp_path) -> None:
    x, y = _blobs()
    model = Backwards()
    with torch.no_grad():
        assert float((model(x).argmin(1) == y).float().mean()) > 0.9  # backwards at set-up
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=len(x), every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=64))
    with torch.no_grad():
        assert float((model(x).argmax(1) == y).float().mean()) > 0.95  # a trained classifier of logits
    assert callback.audited_epochs == [0, 1]
    assert _said(caught) == []


def test_a_zero_initialised_head_is_no_prediction_set(tmp_path) -> None:
    x, y = _blobs()
    head = nn.Linear(4, 3)
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    assert set_rows(torch.zeros(5, 3)) is None and set_rows(torch.tensor([[1.0, 1, 0], [0, 0, 0]])) == (2, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(head, [InputEffectAudit(ace_values=None)], DataLoader(TensorDataset(x, y), batch_size=64),
                    probe_size=len(x), report_dir=None)
    assert _said(caught) == []
