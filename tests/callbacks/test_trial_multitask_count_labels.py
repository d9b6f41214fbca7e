"""Trial "multitask": a head of three count regressions (Poisson, integer counts [N, 3] up to 9) was
refused at the callback's set-up with 'Expected the labels of `probe` to hold classes 0 to 2 (the
model returns 3 logits)': the label check read every explained output of two columns or more as
classes, whatever the model said of its task; a single-task model holding nn.PoissonNLLLoss too. A
head the model says is a regression (a held loss; a task declared per output) is no longer checked."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import trainer


class Counts(pl.LightningModule):
    def __init__(self, multitask: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.counts, self.cls, self.multitask = nn.Linear(4, 3), nn.Linear(4, 2), multitask
        if multitask:  # its class head's and counts head's tasks, declared per output
            self.save_hyperparameters({"task": {"counts": "regression", "cls": "multiclass"}})
        else:
            self.loss = nn.PoissonNLLLoss()

    def forward(self, x):
        return {"counts": self.counts(x), "cls": self.cls(x)} if self.multitask else self.counts(x)

    def training_step(self, batch, batch_idx):
        out = self(batch[0])
        return F.poisson_nll_loss(out["counts"] if self.multitask else out, batch[1].float())

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("multitask", [False, True])
def test_integer_counts_of_a_regression_head_are_no_class_labels(tmp_path, multitask):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 10, (16, 3), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = Counts(multitask)
    audit = InputEffectAudit(target=0, output="counts" if multitask else None, ace_values=None)
    fit = trainer(tmp_path, max_epochs=1, callbacks=[CausalAuditCallback([audit])])
    fit.fit(model, loader, loader)  # before: refused at set-up
    with torch.no_grad():  # count 0's effect of do(x_j := 0), by hand
        f = lambda z: model.counts.double()(z)[:, 0]  # noqa: E731
        xd = x.double()
        ref = torch.stack([(f(xd) - f(xd.index_fill(1, torch.tensor([j]), 0.0))).abs().mean() for j in range(4)])
    assert float(fit.callback_metrics["causal/input_effect/max_abs_effect"]) == pytest.approx(float(ref.max()), rel=1e-5)
