"""A network built in ``configure_model`` (newuser24 trial): the audits' layer names exist only after that hook, which
Lightning calls after the callbacks' ``setup``; the probe check and the dry run (``on_train_start``) see the built
network, the audits explain it, and the fit is bit-identical with and without the callback."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from tests.helpers.lightning import quick_trainer


class _Lazy(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net: nn.Module | None = None

    def configure_model(self) -> None:
        if self.net is None:
            self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2)


def _fit(with_callback: bool):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    pl.seed_everything(0, verbose=False)
    module = _Lazy()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None), UnitImportanceAudit(["net.0"], top_k=2)], probe_size=8)
    quick_trainer(max_epochs=2, callbacks=[callback] if with_callback else []).fit(
        module, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True), DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8))
    return module, callback, x[32:]


def test_audits_of_layers_built_in_configure_model_explain_the_built_network():
    module, callback, probe = _fit(True)
    plain, _, _ = _fit(False)
    assert callback.audited_epochs == [0, 1]
    with torch.no_grad():  # mean_n |f_t(x_n) - f_t(x_n | do(x_j := 0))|, t the predicted class, by hand in float64
        net = module.net.double()
        x = probe.double()
        out = net(x)
        t = out.argmax(1, keepdim=True)
        hand = torch.stack([(out.gather(1, t) - net(x * (torch.arange(4) != j)).gather(1, t)).abs().mean() for j in range(4)])
        module.net.float()
    effects = callback.last_results["input_effect"].vectors["mean_abs_effect"]
    assert torch.allclose(effects.double(), hand, atol=1e-5)
    assert "unit_importance" in callback.last_results
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), plain.state_dict().values()))
