"""18c3e0f9 gave the warning of a softmax of independent probabilities one kind whatever the audit, so that a fit shows
it once; an audit of another output was then silenced too: SobolAudit(output="a") (a two-class head's logits in
[0.3, 0.7]) and CaptumBaseline(output="b") (a three-label head's sigmoids) gave one warning, of head a, in a fit. The
kind now carries the output explained (its `output=` selection and the width read): once per output."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CaptumBaseline, CausalAuditCallback, SobolAudit
from lightning_causal.audits.task_warnings import probabilities_warning
from lightning_causal.causal.engine.batching import fit_kind

SAID = "rows do not sum to 1"


class _TwoHeads(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(6, 2), nn.Linear(6, 3)
        with torch.no_grad():  # head a: logits in [0.3, 0.7], read as probabilities too
            self.a.weight.mul_(0.02)
            self.a.bias.copy_(torch.tensor([0.4, 0.5]))

    def forward(self, x):
        return {"a": self.a(x), "b": torch.sigmoid(self.b(x))}

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x)["a"], y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _said_in_fit(audits, tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 6, generator=g), torch.randint(0, 2, (32,), generator=g)
    trainer = pl.Trainer(max_epochs=1, callbacks=[CausalAuditCallback(audits, probe=(x[:16], y[:16]))], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_TwoHeads(), DataLoader(TensorDataset(x, y), batch_size=16))
    return [str(w.message) for w in caught if SAID in str(w.message)]


def test_an_audit_of_another_output_still_warns_in_a_fit(tmp_path):
    said = _said_in_fit([SobolAudit(n=64, n_bootstrap=0, output="a"), CaptumBaseline(("Saliency",), output="b")], tmp_path)
    assert len(said) == 2
    assert said[0].startswith("SobolAudit") and "[N, 2]" in said[0]
    assert said[1].startswith("CaptumBaseline") and "[N, 3]" in said[1]


def test_audits_of_the_same_output_warn_once_in_a_fit(tmp_path):
    said = _said_in_fit([SobolAudit(n=64, n_bootstrap=0, output="b"), CaptumBaseline(("Saliency",), output="b")], tmp_path)
    assert len(said) == 1 and said[0].startswith("SobolAudit")


@pytest.mark.parametrize(("one", "other"), [
    (("a", torch.rand(8, 2)), ("b", torch.rand(8, 2))),  # another key
    ((None, torch.rand(8, 2)), (None, torch.rand(8, 3))),  # another width read
    ((lambda out: out[0], torch.rand(8, 2)), (lambda out: out[1], torch.rand(8, 2))),  # another callable
])
def test_the_kind_tells_outputs_apart(one, other):
    assert fit_kind(probabilities_warning("m", *one)) != fit_kind(probabilities_warning("m", *other))
    assert fit_kind(probabilities_warning("m", *one)) == fit_kind(probabilities_warning("n", one[0], one[1][:4]))
