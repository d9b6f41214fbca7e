"""BackdoorSuppressionTerm: its parts, setup by reverse engineering, a short repair, errors."""

import copy
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.backdoor import Trigger, attack_success_rate
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm, dilated
from lightning_causal.repair.module import CausalRepairModule
from tests.causal.test_backdoor import TARGET, train_poisoned_mlp
from tests.helpers.models import all_hook_counts


@pytest.fixture(scope="module")
def poisoned():
    return train_poisoned_mlp()


def _repair(model, term, x, y, epochs=6):
    module = CausalRepairModule(copy.deepcopy(model), [term], lr=3e-3)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False))
    return module.model.eval()


def test_loss_parts_by_hand():
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model.bias.zero_()
    t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
    x, y = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 0])
    term = BackdoorSuppressionTerm(t, unlearn_weight=0.5, path_weight=2.0)
    loss = term.loss(model, x, y)
    # triggered logits (1, 3) and (2, 3); clean (1, 0) and (2, 0)
    zt, zc = torch.tensor([[1.0, 3.0], [2.0, 3.0]]), torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    ce = torch.nn.functional.cross_entropy(zt, y)
    path = (zt.softmax(1)[:, 1] - zc.softmax(1)[:, 1]).clamp_min(0).mean()
    assert torch.isclose(loss, 0.5 * ce + 2.0 * path)
    assert term.last_parts == pytest.approx({"unlearn": float(ce), "path": float(path)})
    loss.backward()
    assert model.weight.grad is not None


def test_unit_path_penalises_the_suspects_activation_shift():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
    x, y = torch.rand(5, 2, generator=torch.Generator().manual_seed(0)), torch.zeros(5, dtype=torch.long)
    term = BackdoorSuppressionTerm(t, suspects={"1": [0, 2]}, unlearn_weight=0.0)
    loss = term.loss(model, x, y)
    with torch.no_grad():
        shift = (model[:2](t.apply(x)) - model[:2](x))[:, [0, 2]].pow(2).mean()
    assert term.path == "units" and torch.isclose(loss, shift) and all_hook_counts(model) == 0


def test_short_repair_lowers_asr_and_keeps_accuracy(poisoned):
    model, trig, (xt, yt, xv, yv) = poisoned
    before = attack_success_rate(model, xv, yv, trig)
    repaired = _repair(model, BackdoorSuppressionTerm(trig), xt[:150], yt[:150])
    after = attack_success_rate(repaired, xv, yv, trig)
    with torch.no_grad():
        acc = (repaired(xv).argmax(1) == yv).float().mean()
    assert before > 0.95 and after < 0.2 and acc > 0.85


def test_setup_reverse_engineers_the_trigger(poisoned):
    model, trig, (xt, yt, xv, yv) = poisoned
    term = BackdoorSuppressionTerm(reverse_options={"steps": 150, "batch_size": 32})
    rng = torch.get_rng_state()
    term.setup(model, xv[:128])
    assert torch.equal(torch.get_rng_state(), rng)
    assert term.detection.flagged[:1] == [TARGET] and term.triggers[0].target == TARGET
    assert len(term.triggers) == 2 * len(term.detection.flagged)  # each reversed trigger and its dilation
    assert all(p.grad is None for p in model.parameters())
    x_t = term.stamp(xt[:4])
    assert torch.equal(x_t[0], term.triggers[0].apply(xt[:1])[0]) and torch.equal(x_t[1], term.triggers[1].apply(xt[1:2])[0])


def test_dilated_grows_the_binarised_mask():
    t = Trigger(torch.zeros(1, 4, 4).index_put_((torch.tensor([0]), torch.tensor([0]), torch.tensor([0])), torch.tensor(0.8)),
                torch.full((1, 4, 4), 0.5), 2)
    d = dilated(t)
    assert d.mask[0, :2, :2].sum() == 4 and d.mask.sum() == 4 and torch.allclose(d.pattern, torch.full((1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="image trigger"):
        dilated(Trigger(torch.zeros(3), torch.zeros(3), 0))


def test_bad_configuration_and_inputs():
    t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
    with pytest.raises(ValueError, match="`path`"):
        BackdoorSuppressionTerm(t, path="both")
    with pytest.raises(ValueError, match="`suspects`.*path='units'"):
        BackdoorSuppressionTerm(t, path="units")
    with pytest.raises(ValueError, match="`suspects`"):
        BackdoorSuppressionTerm(t, suspects={"1": []})
    with pytest.raises(ValueError, match="`unlearn_weight`"):
        BackdoorSuppressionTerm(t, unlearn_weight=-1)
    with pytest.raises(ValueError, match="`dilate`"):
        BackdoorSuppressionTerm(t, dilate=-1)
    with pytest.raises(TypeError, match="`trigger`"):
        BackdoorSuppressionTerm("corner")
    with pytest.raises(ValueError, match="true labels"):
        BackdoorSuppressionTerm(t).loss(nn.Linear(2, 2), torch.zeros(2, 2), None)
    with pytest.raises(ValueError, match="no trigger yet"):
        BackdoorSuppressionTerm().loss(nn.Linear(2, 2), torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="train_inputs"):
        BackdoorSuppressionTerm().setup(nn.Linear(2, 2), None)
