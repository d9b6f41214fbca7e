"""CausalRepairModule: the objective, logging, term setup, wrap(), bf16-mixed and configuration errors."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.scm.fairness import counterfactual_fairness_gap
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.models import MLP, LightningClassifier
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule


class _Spy(RepairTerm):
    """Loss = mean squared output; records setup inputs and calls."""

    def __init__(self, weight=1.0, name=None):
        super().__init__(weight, name)
        self.setup_inputs, self.calls = [], 0

    def setup(self, model, train_inputs=None):
        self.setup_inputs.append(None if train_inputs is None else train_inputs.shape)

    def loss(self, model, x, y):
        self.calls += 1
        return model(x).pow(2).mean()


@pytest.fixture(scope="module")
def data():
    return make_synthetic_fairness(600, seed=4)


def _loader(data, labels=True, batch_size=100):
    ds = TensorDataset(data.x, data.y) if labels else TensorDataset(data.x)
    return DataLoader(ds, batch_size=batch_size, shuffle=False)


def _trainer(tmp_path, epochs=1, **kw):
    return pl.Trainer(default_root_dir=str(tmp_path), max_epochs=epochs, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      log_every_n_steps=1, **kw)


def test_training_step_is_task_loss_plus_weighted_terms(data):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    fair = CounterfactualFairnessTerm(data.scm, "a", weight=3.0)
    spy = _Spy(weight=0.5)
    module = CausalRepairModule(model, [fair, spy])
    batch = (data.x[:32], data.y[:32])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        total = module.training_step(batch, 0)
    expected = F.cross_entropy(model(batch[0]), batch[1]) + 3.0 * fair.loss(model, batch[0], None) + 0.5 * model(batch[0]).pow(2).mean()
    torch.testing.assert_close(total, expected)
    # objective: the same loss without logging (no trainer needed), with the values training_step logs
    objective, logs = module.objective(batch)
    torch.testing.assert_close(objective, expected)
    assert list(logs) == ["repair/task_loss", "repair/counterfactual_fairness", "repair/spy", "repair/total"]
    torch.testing.assert_close(logs["repair/counterfactual_fairness"], fair.loss(model, batch[0], None).detach())
    torch.testing.assert_close(logs["repair/total"], expected.detach())
    assert not any(v.requires_grad for v in logs.values())


def test_fit_logs_terms_calls_setup_once_and_skips_zero_weights(tmp_path, data):
    torch.manual_seed(0)
    spy = _Spy(weight=lambda epoch: 0.0 if epoch == 0 else 1.0, name="spy")
    module = CausalRepairModule(MLP(4, (8,)), [CounterfactualFairnessTerm(data.scm, "a"), spy])
    trainer = _trainer(tmp_path, epochs=2)
    trainer.fit(module, _loader(data, batch_size=200))
    assert spy.setup_inputs == [torch.Size([512, 4])]  # once, at most 512 training inputs
    assert spy.calls == 3  # 3 batches per epoch, weight 0 in epoch 0: skipped
    logged = set(trainer.callback_metrics)
    assert {"repair/task_loss_epoch", "repair/counterfactual_fairness_epoch", "repair/spy_epoch", "repair/total_epoch"} <= logged


def test_short_seeded_fine_tune_lowers_the_gap(tmp_path, data):
    torch.manual_seed(0)
    clf = LightningClassifier(MLP(4, (16,)), lr=0.02)
    _trainer(tmp_path, epochs=8).fit(clf, _loader(data))
    before = counterfactual_fairness_gap(clf.model, data.x, data.scm.flip("a"))["mean_abs"]
    repair = CausalRepairModule(clf.model, [CounterfactualFairnessTerm(data.scm, "a")], lr=5e-3)
    _trainer(tmp_path, epochs=4).fit(repair, _loader(data))
    after = counterfactual_fairness_gap(clf.model, data.x, data.scm.flip("a"))["mean_abs"]
    assert before > 0.05 and after < 0.3 * before


def test_wrap_updates_the_wrapped_module_and_keeps_its_optimizer(tmp_path, data):
    torch.manual_seed(0)
    inner = LightningClassifier(MLP(4, (8,)), lr=0.05, optimizer="sgd")
    before = [p.detach().clone() for p in inner.parameters()]
    wrapped = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(data.scm, "a")])
    trainer = _trainer(tmp_path)
    trainer.fit(wrapped, _loader(data), _loader(data))
    opt = trainer.optimizers[0]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.05 and opt.defaults["momentum"] == 0.9
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in inner.parameters()}
    assert all(not torch.equal(a, b) for a, b in zip(before, inner.parameters()))
    metrics = trainer.callback_metrics
    assert "train_loss" in metrics and "val_acc" in metrics  # the wrapped module's own logging still works
    assert "repair/counterfactual_fairness_epoch" in metrics
    torch.testing.assert_close(wrapped(data.x[:3]), inner(data.x[:3]))


def test_bf16_mixed_fine_tune_on_cpu(tmp_path, data):
    torch.manual_seed(0)
    model = MLP(4, (8,))
    before = [p.detach().clone() for p in model.parameters()]
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(data.scm, "a", distance="sym_kl")], lr=1e-2)
    trainer = _trainer(tmp_path, precision="bf16-mixed")
    trainer.fit(module, _loader(data))
    assert torch.isfinite(trainer.callback_metrics["repair/total_epoch"])
    assert float(trainer.callback_metrics["repair/counterfactual_fairness_epoch"]) > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_batch_without_labels_raises(tmp_path, data):
    module = CausalRepairModule(MLP(4, (8,)), [_Spy()])
    with pytest.raises(MisconfigurationException, match="without labels"):
        _trainer(tmp_path).fit(module, _loader(data, labels=False))


def test_constructor_errors():
    term = _Spy()
    with pytest.raises(MisconfigurationException, match="`model`"):
        CausalRepairModule("not a model", [term])
    with pytest.raises(MisconfigurationException, match="`terms`"):
        CausalRepairModule(nn.Linear(2, 2), [object()])
    with pytest.raises(MisconfigurationException, match="unique names"):
        CausalRepairModule(nn.Linear(2, 2), [_Spy(name="t"), _Spy(name="t")])
    with pytest.raises(MisconfigurationException, match="`lr`"):
        CausalRepairModule(nn.Linear(2, 2), [term], lr=0)
    with pytest.raises(MisconfigurationException, match="`task_loss`"):
        CausalRepairModule(nn.Linear(2, 2), [term], task_loss="ce")
    with pytest.raises(MisconfigurationException, match="`lightning_module`"):
        CausalRepairModule.wrap(nn.Linear(2, 2), [term])
    manual = LightningClassifier(nn.Linear(2, 2))
    manual.automatic_optimization = False
    with pytest.raises(MisconfigurationException, match="manual optimization"):
        CausalRepairModule.wrap(manual, [term])
    assert CausalRepairModule(nn.Linear(2, 2), term).terms == [term]  # a single term is accepted


def test_fused_forward_gives_the_same_objective_and_gradients(data):
    torch.manual_seed(0)
    model = MLP(4, (8,))
    terms = [CounterfactualFairnessTerm(data.scm, "a", fraction=0.5), _Spy(weight=0.25)]
    batch = (data.x[:30], data.y[:30])
    grads = []
    for fuse in (True, False):
        module = CausalRepairModule(model, terms, fuse_forward=fuse)
        model.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total = module.training_step(batch, 0)
        total.backward()
        grads.append((total.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)


def test_rows_a_callable_leaves_unchanged_add_nothing_with_the_fused_forward():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    x[:, 0] = 2.0  # every row is in group 2 already

    def to_group_2(rows):
        return torch.cat([torch.full_like(rows[:, :1], 2.0), rows[:, 1:]], 1)

    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2)).train()
    term = CounterfactualFairnessTerm(to_group_2, sensitive=0)
    for fuse in (True, False):
        _, logs = CausalRepairModule(model, [term], fuse_forward=fuse).objective((x, torch.randint(0, 2, (64,))))
        assert float(logs["repair/counterfactual_fairness"]) == 0.0
