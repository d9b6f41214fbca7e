"""Trial "multitask": an Inception-style auxiliary head active in training mode only
(``if self.training: return logits, aux``; eval returns the logits alone). The repair trains the
model in training mode (a tuple: ``output=0`` picks the logits) and validates it in eval mode,
where ``output=0`` took the first sample's row of the one tensor: the fit stopped in validation
with F.cross_entropy's 'For 1D input, 1D target must have size 1'. It now stops naming the mode and
the selection that works in both, ``output=lambda out: out[0] if isinstance(out, tuple) else out``,
which the audits' and the estimators' refusals of ``output=0`` name too."""

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal import AttributeFlip, input_effects
from lightning_causal.causal.engine.forward import select_output
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm
from tests.helpers.lightning import trainer

BOTH_MODES = r"output=lambda out: out\[0\] if isinstance\(out, \(tuple, list\)\) else out"


class AuxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.cls, self.aux = nn.Linear(8, 2), nn.Linear(8, 2)

    def forward(self, x):
        h = self.body(x)
        return (self.cls(h), self.aux(h)) if self.training else self.cls(h)


class LogitsOnly(nn.Module):
    """The reference: the same weights, the logits alone in both modes."""

    def __init__(self, net: AuxNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.cls(self.net.body(x))


def _data(n: int = 32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    x[:, 0] = (torch.rand(n, generator=g) > 0.5).float()
    y = ((x[:, 1] + x[:, 0]) > 0.5).long()
    return x, y


def _loaders():
    ds = TensorDataset(*_data())
    return DataLoader(ds, batch_size=16), DataLoader(ds, batch_size=16)


def test_an_index_output_validated_in_eval_mode_names_the_selection_of_both_modes(tmp_path):
    module = CausalRepairModule(AuxNet(), [CounterfactualFairnessTerm(AttributeFlip(0))], output=0)
    with pytest.raises(MisconfigurationException, match=r"model in eval mode\): .*`output=0` indexed .*took its row 0.*" + BOTH_MODES):
        trainer(tmp_path, max_epochs=1).fit(module, *_loaders())


def test_the_selection_of_both_modes_repairs_the_logits(tmp_path):
    torch.manual_seed(0)
    net = AuxNet()
    term = CounterfactualFairnessTerm(AttributeFlip(0), weight=2.0)
    module = CausalRepairModule(net, [term], output=lambda out: out[0] if isinstance(out, tuple) else out)
    x, y = _data()
    net.train()
    total, logs = module.objective((x, y), 0)
    with torch.no_grad():  # by hand: the logits' cross-entropy, and the term on a model returning the logits alone
        ref_task = F.cross_entropy(LogitsOnly(net)(x), y)
        ref_term = CounterfactualFairnessTerm(AttributeFlip(0)).loss(LogitsOnly(net).train(), x, y)
    torch.testing.assert_close(logs["repair/task_loss"], ref_task)
    torch.testing.assert_close(logs["repair/counterfactual_fairness"], ref_term)
    torch.testing.assert_close(total.detach(), ref_task + 2.0 * ref_term)
    fit = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1)
    fit.fit(module, *_loaders())  # validation in eval mode: the one tensor, as it is
    assert "val_loss" in fit.callback_metrics


def test_the_estimators_and_a_tuple_without_output_name_the_selection_of_both_modes():
    net, (x, _) = AuxNet(), _data(8)
    with pytest.raises(ValueError, match=BOTH_MODES):
        input_effects(net.eval(), x, output=0)
    with pytest.raises(ValueError, match=r"`output=...` indexed .*took a row .*" + BOTH_MODES):
        input_effects(net.eval(), x, output=lambda out: out[0])
    with pytest.raises(TypeError, match=r"got tuple of 2 items .*" + BOTH_MODES):
        select_output(net.train()(x))
    torch.testing.assert_close(  # in eval mode the selection is the logits themselves
        input_effects(net.eval(), x, output=lambda out: out[0] if isinstance(out, tuple) else out),
        input_effects(LogitsOnly(net).eval(), x))


def test_a_column_of_a_square_output_is_no_row():
    """Two samples of a two-class model: `lambda out: out[:, 0]` has the shape of a row but one value per sample."""
    net, (x2, _) = AuxNet(), _data(2)
    square = nn.Sequential(nn.Linear(4, 2))
    term = CounterfactualFairnessTerm(AttributeFlip(0), output=lambda out: out[:, 0])
    torch.testing.assert_close(term.outputs(square, x2), square(x2)[:, 0])
    with pytest.raises(ValueError, match="took its row 0"):
        CounterfactualFairnessTerm(AttributeFlip(0), output=0).outputs(net.eval(), x2)
