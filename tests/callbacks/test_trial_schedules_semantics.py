"""When the audits run under Trainer settings beyond ``max_epochs`` (the schedules trial), as docs/index.md
says: which epochs, at which TensorBoard step, on which weights (the logged effect equals a float64
brute-force do-loop on the weights of that epoch's end), and training bit-identical without the callback."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import SgdMlp

TAG = "causal/input_effect/mean_abs_effect"


class _Net(SgdMlp):
    def __init__(self) -> None:
        super().__init__(6)


class _Weights(pl.Callback):
    """The weights at each epoch end (after the audit, which leaves them as they were)."""

    def __init__(self) -> None:
        self.at: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer, pl_module):
        self.at[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return (DataLoader(TensorDataset(x[:64], y[:64]), batch_size=8, shuffle=True),  # 8 batches an epoch
            DataLoader(TensorDataset(x[64:], y[64:]), batch_size=8))


def _brute_force_mean_abs_effect(weights: dict[str, torch.Tensor], x: torch.Tensor) -> float:
    """mean_{n,g} |f_t(x_n) - f_t(x_n | do(x_g := 0))|, t the predicted class, in float64, one column at a time."""
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    net.load_state_dict({k.removeprefix("net."): v.double() for k, v in weights.items()})
    x = x.double()
    with torch.no_grad():
        out = net(x)
        t = out.argmax(1, keepdim=True)
        effects = []
        for g in range(x.shape[1]):
            cut = x.clone()
            cut[:, g] = 0.0
            effects.append(out.gather(1, t) - net(cut).gather(1, t))
    return float(torch.cat(effects, 1).abs().mean())


def _fit(root, trainer_options, every, with_callback=True):
    train, val = _data()
    pl.seed_everything(0, verbose=False)
    module, weights = _Net(), _Weights()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16, every_n_epochs=every)
    extra = trainer_options.pop("callbacks", list)()  # new ones for each fit
    options = dict(default_root_dir=root, logger=TensorBoardLogger(root, name="", version=""), enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False, accelerator="cpu", devices=1, log_every_n_steps=1)
    options.update(trainer_options)
    callbacks = ([audit] if with_callback else []) + [weights] + extra
    pl.Trainer(callbacks=callbacks, **options).fit(module, train, val)
    return audit, module, weights, val


CASES = {  # trainer options, every_n_epochs -> audited epochs, their reports, their steps (8 batches an epoch)
    "val_check_interval=0.25": (dict(max_epochs=2, val_check_interval=0.25), 1,
                                [0, 1], ["epoch_0000.json", "epoch_0001.json"], [7, 15]),
    "check_val_every_n_epoch=3": (dict(max_epochs=3, check_val_every_n_epoch=3, num_sanity_val_steps=0), 2,
                                  [1, 2], ["epoch_0001.json", "epoch_0002_fit_end.json"], [15, 23]),
    "max_steps mid-epoch": (dict(max_epochs=-1, max_steps=12), 1, [0, 1], ["epoch_0000.json", "epoch_0001.json"], [7, 11]),
    "accumulation and clipping": (dict(max_epochs=2, accumulate_grad_batches=3, gradient_clip_val=0.05), 1,
                                  [0, 1], ["epoch_0000.json", "epoch_0001.json"], [2, 5]),  # 3 optimizer steps an epoch
    "early stopping mid-epoch": (dict(max_epochs=4, val_check_interval=0.25, callbacks=lambda: [
        EarlyStopping("val_loss", patience=0, min_delta=10.0)]), 2, [0], ["epoch_0000_fit_end.json"], [3]),
}


@pytest.mark.parametrize("case", CASES)
def test_audited_epochs_steps_and_weights_under_trainer_settings(tmp_path, case):
    options, every, epochs, reports, steps = CASES[case]
    audit, module, weights, val = _fit(tmp_path / "a", dict(options), every)
    assert audit.audited_epochs == epochs
    assert sorted(p.name for p in (tmp_path / "a" / "causal_audit").glob("*.json")) == reports
    events = EventAccumulator(str(tmp_path / "a"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars(TAG)] == steps  # one point per audit, in order
    probe = val.dataset.tensors[0][:16]
    for epoch, name in zip(epochs, reports):  # the audit explains the weights of its epoch's end
        logged = load_report(tmp_path / "a" / "causal_audit" / name)["audits"]["input_effect"]["scalars"]["mean_abs_effect"]
        assert logged == pytest.approx(_brute_force_mean_abs_effect(weights.at[epoch], probe), rel=1e-5, abs=1e-7)
    _, plain, _, _ = _fit(tmp_path / "b", dict(options), every, with_callback=False)
    for name, value in plain.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
