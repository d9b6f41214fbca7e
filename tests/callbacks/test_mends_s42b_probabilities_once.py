"""A two-class classifier trained with a functional F.cross_entropy, whose two logits all lie in [0, 1] on the probe
(it learns only their difference), says nothing of its task, so the audits that take a softmax read its outputs as
independent probabilities: newuser106 saw the warning four times at one audit epoch (Sobol', the fairness term,
FairnessAudit, CaptumBaseline). A fit now shows it once, for the first audit; outside a fit each audit still warns."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CaptumBaseline, CausalAuditCallback, SobolAudit
from lightning_causal.audits import Probe

SAID = "rows do not sum to 1"


class _Student(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(6, 2)
        with torch.no_grad():  # logits in [0.3, 0.7]: a two-class head whose common level sits in [0, 1]
            self.net.weight.mul_(0.02)
            self.net.bias.copy_(torch.tensor([0.4, 0.5]))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)  # functional: no loss module says the task

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # the logits stay in [0, 1]


def _audits():
    return [SobolAudit(n=64, n_bootstrap=0), CaptumBaseline(("Saliency",))]


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(32, 6, generator=g), torch.randint(0, 2, (32,), generator=g)


def test_a_fit_shows_the_softmax_of_probabilities_warning_once_not_once_per_audit(tmp_path):
    x, y = _data()
    model = _Student()
    assert bool(((model(x) >= 0) & (model(x) <= 1)).all())
    trainer = pl.Trainer(max_epochs=2, callbacks=[CausalAuditCallback(_audits(), probe=(x[:16], y[:16]))], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    said = [str(w.message) for w in caught if SAID in str(w.message)]
    assert len(said) == 1 and said[0].startswith("SobolAudit") and "a fit shows this once" in said[0]


def test_outside_a_fit_each_audit_still_warns():
    x, y = _data()
    model = _Student().eval()
    for audit in _audits():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit.run(model, Probe(x[:16], y[:16]))
        assert len([w for w in caught if SAID in str(w.message)]) == 1
