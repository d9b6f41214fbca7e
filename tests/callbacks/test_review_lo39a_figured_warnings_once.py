"""Review of 82e5008b and 3249e6c0: two warnings now given at a fit's audit epochs hold figures of the model that move as
it trains, the clean probe's samples beyond float rounding (max |difference|, its share of the scale) and the saturated
decisions (the range of the outputs), and the callback shows each text once per fit: a model that trained on showed
them again at every audit epoch (4 warnings for 3 epochs each). They carry a kind (`batching.kinded`) the callback
shows once per fit by; a direct run keeps the figures."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip
from tests.causal.test_leftovers_s39a_clean_rows_beyond_rounding import _BatchResidual, _probe


class _Drifts(pl.LightningModule):
    """``net`` whose parameters grow by 1% at each training step: its outputs (and the figures of their warnings) move
    from one audit epoch to the next."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        with torch.no_grad():
            for p in self.net.parameters():
                p.mul_(1.01)
        return sum(p.sum() for p in self.net.parameters()) * 0

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fitted(net: nn.Module, x: torch.Tensor, audit: FairnessAudit, words: str, root) -> list[str]:
    y = torch.arange(len(x)) % 2
    data = DataLoader(TensorDataset(x, y), batch_size=len(x))
    callback = CausalAuditCallback([audit], probe_size=len(x), every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=root)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer.fit(_Drifts(net), data, data)
    assert callback.audited_epochs == [0, 1, 2]
    return [str(w.message) for w in seen if words in str(w.message)]


def test_the_clean_probes_rounding_warning_is_shown_once_per_fit(tmp_path) -> None:
    said = _fitted(_BatchResidual(tol=1e-3), _probe(), FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda o: o[:, :1]),
                   "to float rounding, but the outputs of probe samples", tmp_path)
    assert len(said) == 1 and "max |difference|" in said[0]  # was one per audit epoch and the set-up: 4


def test_the_saturated_decisions_warning_is_shown_once_per_fit(tmp_path) -> None:
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(3))
    x[:, 3] = (x[:, 3] > 0).float()
    net = nn.Linear(4, 1)
    with torch.no_grad():  # a log-likelihood of about -12 read as a binary logit
        net.weight.copy_(torch.tensor([[0.5, 0.2, 0.0, 0.0]]))
        net.bias.fill_(-12.0)
    words = "compares class probabilities"
    said = _fitted(net, x, FairnessAudit(AttributeFlip(3), sensitive=3), words, tmp_path)
    assert len(said) == 1  # was 4
    with warnings.catch_warnings(record=True) as seen:  # a direct run keeps its figures and its class
        warnings.simplefilter("always")
        FairnessAudit(AttributeFlip(3), sensitive=3).run(net, Probe(x, torch.arange(64) % 2))
    (direct,) = [w for w in seen if words in str(w.message)]
    assert direct.category is UserWarning and "everywhere, from -" in str(direct.message)
