"""``explain=`` names a wrapped model's forward parameter through :class:`CausalRepairModule`, whose own forward is
``(*args, **kwargs)`` (session 44, newuser117's finding: ``explain="x_cat"`` was refused, naming no parameter)."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm, audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.causal.engine.chosen_input import has_default, positional_names


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num = nn.Linear(3, 8)
        self.cat = nn.Linear(2, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x_num, x_cat, scale=1.0):
        return self.head(torch.relu(self.num(x_num) + scale * self.cat(x_cat)))


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = TwoInputs()

    def forward(self, x_num, x_cat):
        return self.net(x_num, x_cat)

    def training_step(self, batch, batch_idx):
        x_num, x_cat, y = batch
        return nn.functional.cross_entropy(self(x_num, x_cat), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _flip(x_cat):
    return torch.stack([1 - x_cat[:, 0], x_cat[:, 1]], 1)


def _unpack(batch):
    return (batch[0], batch[1]), batch[2], None


def test_names_read_through_the_repair_module():
    model = TwoInputs()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(_flip, weight=1.0)], unpack_batch=_unpack, explain=1)
    assert positional_names(repair) == ["x_num", "x_cat", "scale"]
    assert has_default(repair, "scale") and not has_default(repair, "x_cat")
    wrapped = CausalRepairModule.wrap(Module(), [CounterfactualFairnessTerm(_flip, weight=1.0)], unpack_batch=_unpack,
                                      explain=1)
    assert positional_names(wrapped) == ["x_num", "x_cat"]


def test_plain_var_args_forward_keeps_no_names():
    class Passes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = TwoInputs()

        def forward(self, *args, **kwargs):  # names no module it passes to: no names guessed
            return self.inner(*args, **kwargs)

    assert positional_names(Passes()) is None


def test_audit_explains_the_wrapped_input_by_name():
    g = torch.Generator().manual_seed(1)
    x_num, x_cat = torch.randn(16, 3, generator=g), torch.randint(0, 2, (16, 2), generator=g).float()
    loader = DataLoader(TensorDataset(x_num, x_cat, torch.zeros(16, dtype=torch.long)), batch_size=8)
    torch.manual_seed(0)
    model = TwoInputs().eval()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(_flip, weight=1.0)], unpack_batch=_unpack, explain=1)
    by_name = audit_model(repair, [InputEffectAudit(ace_values=None)], loader, probe_size=16, unpack_batch=_unpack,
                          explain="x_cat")[0]
    by_position = audit_model(model, [InputEffectAudit(ace_values=None)], loader, probe_size=16, unpack_batch=_unpack,
                              explain=1)[0]
    with torch.no_grad():  # do(x_cat[:, j] := 0) of the predicted class, by hand
        clean = model(x_num, x_cat)
        t = clean.argmax(1, keepdim=True)
        hand = torch.stack([(clean.gather(1, t) - model(x_num, x_cat * (torch.arange(2) != j)).gather(1, t))[:, 0]
                            for j in range(2)], 1)
    torch.testing.assert_close(by_name.maps["effect"], hand)
    torch.testing.assert_close(by_position.maps["effect"], hand)
