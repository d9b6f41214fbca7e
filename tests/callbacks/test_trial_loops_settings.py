"""Training-loop set-ups of the loops trial that the schedules trial left out, checked as docs/index.md says:
manual optimization with an accumulation of its own, ``overfit_batches``, validation every N steps across
epochs (``check_val_every_n_epoch=None``), two validation dataloaders and ``num_sanity_val_steps=-1``. In each,
the audited epochs, one TensorBoard point per audit at Lightning's epoch-end step, the logged effect equal to
a float64 do-loop on the weights of that epoch's end (on the first validation dataloader's samples), and the
weights bit-identical to the same fit without the callback."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.lightning import SgdMlp

TAG = "causal/input_effect/mean_abs_effect"


_Net = SgdMlp  # Linear(5, 8) -> ReLU -> Linear(8, 3), SGD


class _ManualAccumulation(_Net):
    """Manual optimization stepping every second batch (the loss halved), as Lightning's docs write it."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        self.manual_backward(F.cross_entropy(self(batch[0]), batch[1]) / 2)
        if (batch_idx + 1) % 2 == 0:
            optimizer.step()
            optimizer.zero_grad()


class _Weights(pl.Callback):
    def __init__(self) -> None:
        self.at: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer, pl_module):
        self.at[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def _brute_force(weights: dict[str, torch.Tensor], x: torch.Tensor) -> float:
    """mean_{n,g} |f_t(x_n) - f_t(x_n | do(x_g := 0))|, t the predicted class, in float64."""
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    net.load_state_dict({k: v.double() for k, v in weights.items()})
    x = x.double()
    with torch.no_grad():
        out = net(x)
        t = out.argmax(1, keepdim=True)
        cut = [x.clone().index_fill_(1, torch.tensor([g]), 0.0) for g in range(x.shape[1])]
        return float(torch.cat([out.gather(1, t) - net(c).gather(1, t) for c in cut], 1).abs().mean())


CASES = {  # module, trainer options, two validation dataloaders -> audited epochs, their steps (6 batches an epoch)
    "manual accumulation": (_ManualAccumulation, {}, False, [0, 1], [5, 11]),
    "overfit_batches=2": (_Net, dict(overfit_batches=2), False, [0, 1], [1, 3]),
    "validation every 4 steps": (_Net, dict(val_check_interval=4, check_val_every_n_epoch=None), False, [0, 1], [5, 11]),
    "two validation dataloaders": (_Net, {}, True, [0, 1], [5, 11]),
    "num_sanity_val_steps=-1": (_Net, dict(num_sanity_val_steps=-1), False, [0, 1], [5, 11]),
}


def _fit(root, case, with_callback=True):
    module_class, options, two_val, _, _ = CASES[case]
    x, y = _data()
    train = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=8, shuffle=True)
    first = DataLoader(TensorDataset(x[48:64], y[48:64]), batch_size=8)
    val = [first, DataLoader(TensorDataset(x[64:], y[64:]), batch_size=8)] if two_val else first
    pl.seed_everything(0, workers=True, verbose=False)
    module, weights = module_class(), _Weights()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16)
    trainer = pl.Trainer(max_epochs=2, callbacks=([audit] if with_callback else []) + [weights], accelerator="cpu",
                         devices=1, default_root_dir=root, logger=TensorBoardLogger(root, name="", version=""),
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         deterministic=True, log_every_n_steps=1, **options)
    trainer.fit(module, train, val)
    return audit, module, weights, x[48:64]


@pytest.mark.parametrize("case", CASES)
def test_audits_under_training_loop_settings(tmp_path, case):
    *_, epochs, steps = CASES[case]
    audit, module, weights, probe = _fit(tmp_path / "a", case)
    assert audit.audited_epochs == epochs
    events = EventAccumulator(str(tmp_path / "a"), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars(TAG)
    assert [e.step for e in logged] == steps
    for epoch, event in zip(epochs, logged):
        assert event.value == pytest.approx(_brute_force(weights.at[epoch], probe), rel=1e-5, abs=1e-7)
    _, plain, _, _ = _fit(tmp_path / "b", case, with_callback=False)
    for name, value in plain.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
