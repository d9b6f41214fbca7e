"""CausalRepairModule.wrap() inside real training loops: what the wrapped module's own loop sees."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from tests.helpers.net_modules import NetClassifier


def _data(n: int = 32) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return TensorDataset(x, ((x[:, 1] + x[:, 0]) > 0.5).long())


class _DictStep(pl.LightningModule):
    """Returns a dict from training_step and reads its own keys back in on_train_batch_end."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Linear(4, 2)
        self.seen: list = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        return {"loss": F.cross_entropy(out, y), "preds": out.detach().argmax(1), "n": x.shape[0]}

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.seen.append(outputs)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module: pl.LightningModule) -> None:
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, DataLoader(_data(), batch_size=8))


def test_the_wrapped_training_steps_dict_reaches_its_on_train_batch_end():
    plain, inner = _DictStep(), _DictStep()
    _fit(plain)
    term = CounterfactualFairnessTerm(AttributeFlip(0), weight=2.0)
    _fit(CausalRepairModule.wrap(inner, [term]))
    assert len(inner.seen) == len(plain.seen) == 4
    # before the fix: on_train_batch_end got {"loss": total} only (KeyError on "preds")
    assert [sorted(o) for o in inner.seen] == [sorted(o) for o in plain.seen] == [["loss", "n", "preds"]] * 4
    assert all(o["n"] == 8 and o["preds"].shape == (8,) for o in inner.seen)
    # "loss" is the optimised total: the task loss plus 2 x the term, not the task loss alone
    x, y = _data()[:8]
    with torch.no_grad():
        probe = _DictStep()
        z, zc = probe(x), probe(torch.cat([1 - x[:, :1], x[:, 1:]], 1))
        expected = F.cross_entropy(z, y) + 2.0 * (z.softmax(1) - zc.softmax(1)).abs().sum(1).mean() / 2
    assert torch.allclose(inner.seen[0]["loss"], expected, atol=1e-6)


def test_manual_optimization_set_after_wrapping_is_refused_when_fitting():
    inner = _DictStep()
    repair = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    inner.automatic_optimization = False  # e.g. set in the module's setup()
    with pytest.raises(MisconfigurationException, match="automatic_optimization=False"):
        _fit(repair)


class _NoBatchIdx(pl.LightningModule):
    """Steps without `batch_idx`, which Lightning allows (it passes it only to steps that take it)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Linear(4, 2)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def test_step(self, batch):
        x, y = batch
        self.log("test_loss", F.cross_entropy(self(x), y))

    def predict_step(self, batch):
        return self(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_steps_without_batch_idx_run_wrapped_as_unwrapped():
    results = []
    for wrap in (False, True):
        inner = _NoBatchIdx()
        module = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)]) if wrap else inner
        trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        # before the fix: TypeError "validation_step() takes 2 positional arguments but 3 were given" (and the same
        # for training_step, test_step and predict_step)
        trainer.fit(module, DataLoader(_data(), batch_size=8), DataLoader(_data(16), batch_size=8))
        tested = trainer.test(module, DataLoader(_data(16), batch_size=8), verbose=False)[0]["test_loss"]
        predicted = torch.cat(trainer.predict(module, DataLoader(_data(16), batch_size=8)))
        results.append((list(inner.parameters()), tested, predicted))
    (w0, t0, p0), (w1, t1, p1) = results
    assert all(torch.equal(a, b) for a, b in zip(w0, w1))  # weight 0: the fit of the unwrapped module
    assert t0 == t1 and torch.equal(p0, p1)


class _Backbone(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)


class _Frozen(pl.Callback):
    """Records at each epoch's end whether ``backbone`` still holds the weights ``before``."""

    def __init__(self, backbone: nn.Module, before: list) -> None:
        self.backbone, self.before, self.seen = backbone, before, []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append(all(torch.equal(a, b) for a, b in zip(self.before, self.backbone.parameters())))


def test_backbone_finetuning_freezes_and_unfreezes_the_wrapped_modules_backbone():
    from lightning.pytorch.callbacks import BackboneFinetuning

    weights = []
    for wrap in (False, True):
        inner = _Backbone()
        before = [p.detach().clone() for p in inner.backbone.parameters()]
        module = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)]) if wrap else inner
        frozen = _Frozen(inner.backbone, before)
        trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu",
                             enable_model_summary=False, callbacks=[BackboneFinetuning(unfreeze_backbone_at_epoch=2), frozen])
        torch.manual_seed(3)
        # before the fix: AttributeError "'_WrappedRepairModule' object has no attribute 'backbone'"
        trainer.fit(module, DataLoader(_data(), batch_size=8, shuffle=True))
        assert frozen.seen == [True, True, False]  # frozen for epochs 0 and 1, trained from epoch 2
        weights.append([p.detach().clone() for p in inner.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_only_the_wrapped_modules_submodules_are_forwarded():
    inner = _Backbone()
    inner.scale = torch.ones(1)
    wrapped = CausalRepairModule.wrap(inner, [])
    assert wrapped.backbone is inner.backbone and wrapped.head is inner.head
    with pytest.raises(AttributeError, match="scale"):
        wrapped.scale  # noqa: B018 - a tensor attribute is not forwarded
    assert sum(1 for m in wrapped.modules() if m is inner.backbone) == 1


class _DictTask(CausalRepairModule):
    def task_step(self, batch, batch_idx):
        x, y = batch
        return {"loss": F.cross_entropy(self.model(x), y)}  # a training_step habit


def test_a_task_step_returning_a_dict_is_named_not_an_attribute_error():
    x, y = _data(8)[:]
    module = _DictTask(nn.Linear(4, 2), [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    # before the fix: AttributeError "'dict' object has no attribute 'detach'"
    with pytest.raises(MisconfigurationException, match=r"_DictTask.task_step` to return the task loss .* got dict: return its 'loss'"):
        module.objective((x, y))


def test_wrapping_a_manual_optimization_module_names_the_setting_and_the_alternative():
    inner = _DictStep()
    inner.automatic_optimization = False
    with pytest.raises(MisconfigurationException, match=r"`automatic_optimization=False`.*self\.objective\(batch, batch_idx\)"):
        CausalRepairModule.wrap(inner, [])


class _RealLoop(pl.LightningModule):
    """A frozen backbone, two param groups, a scheduler; ``hand`` adds the fairness term by hand (float64)."""

    def __init__(self, scheduler: str, hand=None) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.scheduler, self.hand = scheduler, hand
        self.backbone = nn.Linear(4, 8)
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        z = self(x)
        loss = F.cross_entropy(z, y)
        self.log("train_loss", loss, on_epoch=True)
        if self.hand is not None:  # the docs' abs_prob: mean ½‖p(x) − p(x_cf)‖₁ with column 0 flipped
            zc = self(torch.cat([1 - x[:, :1], x[:, 1:]], 1))
            loss = loss + self.hand(self.current_epoch) * 0.5 * (z.softmax(1) - zc.softmax(1)).abs().sum(1).mean()
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD([{"params": self.head.parameters(), "lr": 0.3},
                               {"params": self.backbone.parameters(), "lr": 1.0}], momentum=0.9)
        if self.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0)  # lowers the rate every epoch
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.5, 1.0], total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _loop_fit(module, inner, **trainer_kwargs):
    lrs = []

    class _Rates(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(tuple(g["lr"] for g in trainer.optimizers[0].param_groups))

    frozen = [p.detach().clone() for p in inner.backbone.parameters()]
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[_Rates()], **trainer_kwargs)
    torch.manual_seed(3)
    trainer.fit(module, DataLoader(_data(48), batch_size=8, shuffle=True), DataLoader(_data(16), batch_size=8))
    assert all(torch.equal(a, b) for a, b in zip(frozen, inner.backbone.parameters()))
    return [p.detach().clone() for p in inner.parameters()], lrs, set(trainer.callback_metrics)


@pytest.mark.parametrize("scheduler", ["plateau", "onecycle"])
def test_weight_0_is_the_unwrapped_fit_with_schedulers_param_groups_accumulation_and_clipping(scheduler):
    kwargs = {"accumulate_grad_batches": 2, "gradient_clip_val": 0.2, "deterministic": True}
    plain = _RealLoop(scheduler)
    w0, lrs0, metrics0 = _loop_fit(plain, plain, **kwargs)
    inner = _RealLoop(scheduler)
    w1, lrs1, metrics1 = _loop_fit(CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)]),
                                   inner, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(w0, w1))
    assert lrs0 == lrs1 and len(set(lrs0)) >= 2  # the scheduler stepped, as unwrapped (not twice, not never)
    assert metrics0 <= metrics1 and {"train_loss", "val_loss", "repair/total"} <= metrics1


def test_the_optimised_objective_is_the_task_loss_plus_the_scheduled_term_computed_by_hand():
    def schedule(epoch):
        return [0.5, 2.0, 1.0][epoch]

    kwargs = {"accumulate_grad_batches": 3, "gradient_clip_val": 0.2, "precision": "64-true"}
    plain = _RealLoop("onecycle", hand=schedule)
    w0, _, _ = _loop_fit(plain, plain, **kwargs)
    inner = _RealLoop("onecycle")
    w1, _, _ = _loop_fit(CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=schedule)]),
                         inner, **kwargs)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(w0, w1))
    assert not torch.allclose(w1[2], _RealLoop("onecycle").head[1].weight.double(), atol=1e-3)  # it trained


class _HparamsLr(NetClassifier):
    def __init__(self, lr: float = 1e-5) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(1)
        self.net = nn.Linear(4, 2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def test_lr_find_sets_the_rate_the_wrapped_modules_optimizer_uses():
    from lightning.pytorch.tuner import Tuner

    inner = _HparamsLr()
    wrapped = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    found = Tuner(trainer).lr_find(wrapped, DataLoader(_data(256), batch_size=8), num_training=20)
    # before the fix: the suggestion went to the wrap's own unused `lr` (1e-3 by default) and the wrapped
    # module kept hparams.lr=1e-5, silently
    assert found.suggestion() is not None and inner.hparams.lr == found.suggestion() != 1e-5
    wrapped.lr = 0.25
    assert inner.hparams.lr == 0.25 and wrapped.lr == 0.25
    assert inner.configure_optimizers().param_groups[0]["lr"] == 0.25
    with pytest.raises(AttributeError):
        CausalRepairModule.wrap(_DictStep(), []).lr  # noqa: B018 - a module without a rate: none on the wrap either


def test_the_wrapped_modules_example_input_array_reaches_the_summary_and_the_tensorboard_graph(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.utilities.model_summary import ModelSummary
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    inner = _Backbone()
    inner.example_input_array = torch.zeros(2, 4)
    wrapped = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    # before the fix: None, so no sizes in the summary and no graph in TensorBoard (only a warning)
    assert wrapped.example_input_array is inner.example_input_array
    summary = ModelSummary(wrapped, max_depth=1)
    assert summary.in_sizes == [[2, 4]] and summary.out_sizes == [[2, 2]]
    logger = TensorBoardLogger(tmp_path, name="", version="", log_graph=True)
    trainer = pl.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(wrapped, DataLoader(_data(16), batch_size=8))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Tags()["graph"]
    wrapped.example_input_array = torch.ones(3, 4)
    assert inner.example_input_array.shape == (3, 4)


class _OneLogit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)
        with torch.no_grad():  # a perfect classifier of y = (x1 > 0)
            self.lin.weight.copy_(torch.tensor([[0.0, 10.0, 0.0, 0.0]]))
            self.lin.bias.zero_()

    def forward(self, x):
        return self.lin(x)


def _validate(module, y_of):
    x = _data(64).tensors[0]
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    return trainer.validate(module, DataLoader(TensorDataset(x, y_of(x)), batch_size=16), verbose=False)[0]


def test_val_acc_is_logged_for_class_logits_only_never_as_a_wrong_number():
    def bce(out, y):
        return F.binary_cross_entropy_with_logits(out.squeeze(1), y.float())

    binary = _validate(CausalRepairModule(_OneLogit(), [], task_loss=bce), lambda x: (x[:, 1] > 0).long())
    # before the fix: val_acc 0.47 (the argmax of one column is always class 0) for a model right on every row
    assert "val_acc" not in binary and binary["val_loss"] < 0.1

    def mse(out, y):
        return F.mse_loss(out.squeeze(1), y)

    assert set(_validate(CausalRepairModule(_OneLogit(), [], task_loss=mse), lambda x: 3 * x[:, 1])) == {"val_loss"}
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    two = _validate(CausalRepairModule(net, []), lambda x: (x[:, 1] > 0).long())
    x = _data(64).tensors[0]
    assert two["val_acc"] == pytest.approx(float((net(x).argmax(1) == (x[:, 1] > 0).long()).float().mean()))


class _Calls(pl.Callback):
    def __init__(self) -> None:
        self.epochs = 0

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1


class _BuiltLate(NetClassifier):
    """Builds its layers in `configure_model` and returns a callback from `configure_callbacks`."""

    def __init__(self) -> None:
        super().__init__()
        self.net = None
        self.calls = _Calls()

    def configure_model(self):
        if self.net is None:
            torch.manual_seed(1)
            self.net = nn.Linear(4, 2)

    def configure_callbacks(self):
        return [self.calls]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_configure_model_and_configure_callbacks_run_wrapped_as_unwrapped():
    import warnings

    weights = []
    for wrap in (False, True):
        inner = _BuiltLate()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # before the fix: a warning that neither hook is called
            module = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)]) if wrap else inner
        trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        # before the fix: "optimizer got an empty parameter list" (configure_model not called)
        trainer.fit(module, DataLoader(_data(), batch_size=8))
        assert inner.calls.epochs == 2 and inner.calls in trainer.callbacks
        weights.append([p.detach().clone() for p in inner.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


class _WithMethod(_Backbone):
    @property
    def width(self) -> int:
        return self.head.in_features

    def sample(self, n: int):
        return self(torch.zeros(n, 4)).argmax(1)


def test_a_callback_calling_the_wrapped_modules_own_methods_works_as_unwrapped():
    inner = _WithMethod()
    wrapped = CausalRepairModule.wrap(inner, [])
    # before the fix: AttributeError "'_WrappedRepairModule' object has no attribute 'sample'"
    assert wrapped.width == 8 and torch.equal(wrapped.sample(3), inner.sample(3))
    assert wrapped.training_step.__self__ is wrapped  # LightningModule's own names stay the wrap's
    with pytest.raises(AttributeError):
        wrapped._private  # noqa: B018
