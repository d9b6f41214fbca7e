"""LightningClassifier around a network whose forward takes its inputs as one pair, forward(self, xs)
(a, b = xs), trained on batches ((a, b), y): it trained before 5f4995d, whose forward then unpacked
the pair into two arguments (TypeError: forward() takes 2 positional arguments but 3 were given);
the audits, which call the module with the probe's inputs as arguments, failed on it as well."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.causal import unit_effects
from lightning_causal.models import LightningClassifier


class PairNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 4)
        self.b = nn.Linear(3, 4)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))

    def forward(self, xs):  # noqa: ANN001, ANN201 - one argument holding both inputs
        a, b = xs
        return self.head(self.a(a) + self.b(b))


class Rows(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.a, self.b = torch.randn(48, 2, generator=g), torch.randn(48, 3, generator=g)
        self.y = (self.a[:, 0] > 0).long()

    def __len__(self) -> int:
        return 48

    def __getitem__(self, i: int):
        return (self.a[i], self.b[i]), self.y[i]


def test_a_network_taking_its_inputs_as_one_pair_trains_and_is_audited(tmp_path) -> None:
    pl.seed_everything(0)
    module = LightningClassifier(PairNet(), lr=1e-2)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.head.0"])], probe_size=16)
    trainer = pl.Trainer(max_epochs=1, callbacks=[audit], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    rows = Rows()
    trainer.fit(module, DataLoader(rows, batch_size=16), DataLoader(rows, batch_size=16))
    assert audit.audited_epochs == [0]
    module.eval()
    with torch.no_grad():
        direct = module.model((rows.a, rows.b))
        torch.testing.assert_close(module((rows.a, rows.b)), direct)
        torch.testing.assert_close(module([rows.a, rows.b]), direct)
        torch.testing.assert_close(module(rows.a, rows.b), direct)
    effects = unit_effects(module, (rows.a[:8], rows.b[:8]), "model.head.0")
    with torch.no_grad():  # zeroing unit u of the ReLU: the logit of each sample's predicted class moves by w[c, u] h_u
        h = torch.relu(module.model.a(rows.a[:8]) + module.model.b(rows.b[:8]))
        c = direct[:8].argmax(1)
        expected = module.model.head[1].weight[c] * h
    torch.testing.assert_close(effects, expected)
