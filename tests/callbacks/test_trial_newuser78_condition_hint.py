"""A class-conditional denoiser ``forward(x_t, t, y)`` trained on batches ``(x0, y)`` (``training_step`` draws ``t``
and the noise; ``y`` a class condition, dropped at random for classifier-free guidance) got, for the probe read from
those batches, the refusal's advice for an unconditional denoiser ``forward(x_t, t)``:
``unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)``. Followed, it calls ``model(x0, y)``: the digit
labels become the timesteps, the condition is left out, and every audit explains that silently. Where ``forward``
takes the labels under a later parameter named as a condition (``y``, ``labels``, ``class_labels``, ``cond``, ...),
the refusal now says so and makes the missing parameter in ``unpack_batch=``."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import trainer

T = 10
ALPHA_BAR = torch.linspace(0.99, 0.1, T)


class Denoiser(pl.LightningModule):
    def __init__(self, conditional: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.temb, self.yemb = nn.Embedding(T, 1), nn.Embedding(11, 1)
        self.conditional = conditional

    def forward(self, x_t, t, y=None):
        h = self.conv(x_t) + self.temb(t)[:, :, None, None]
        return h + self.yemb(y)[:, :, None, None] if y is not None else h

    def training_step(self, batch, batch_idx):
        x0, y = batch
        t = torch.randint(0, T, (len(x0),))
        noise = torch.randn_like(x0)
        a = ALPHA_BAR[t][:, None, None, None]
        return F.mse_loss(self(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, y), noise)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Unconditional(Denoiser):
    def forward(self, x_t, t):
        return self.conv(x_t) + self.temb(t)[:, :, None, None]


def _refusal(model, tmp_path) -> str:
    g = torch.Generator().manual_seed(0)
    x0, y = torch.randn(16, 1, 4, 4, generator=g), torch.randint(0, 10, (16,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x0, y), batch_size=8)
    region = lambda out: out[:, :, 1:3, 1:3].mean((2, 3))  # noqa: E731
    callback = CausalAuditCallback([InputEffectAudit(output=region, ace_values=None)], report_dir=tmp_path / "r")
    with pytest.raises(MisconfigurationException) as info:
        trainer(tmp_path, callbacks=[callback], max_epochs=1).fit(model, loader, loader)
    return str(info.value)


def test_labels_a_conditional_denoiser_takes_as_y_are_not_advised_as_its_timesteps(tmp_path):
    message = _refusal(Denoiser(), tmp_path)
    assert "missing 1 required positional argument: 't'" in message
    assert "unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)" not in message  # model(x0, y): y as t
    assert "`forward` takes them as its `y`" in message
    assert "make `t` in `unpack_batch=`" in message
    assert "((*make(batch[0]), batch[1]), None, None)" in message


def test_an_unconditional_denoiser_keeps_the_advice_of_its_timesteps(tmp_path):
    message = _refusal(Unconditional(), tmp_path)
    assert "unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)" in message
    assert "takes them as its" not in message


class Ema(pl.Callback):
    """An EMA copy of the weights, updated after every training batch."""

    def __init__(self) -> None:
        self.ema: dict[str, torch.Tensor] | None = None

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.ema = state if self.ema is None else {k: 0.9 * self.ema[k] + 0.1 * state[k] for k in state}


class Guided(pl.LightningModule):
    """The page's conditional denoiser: forward(x_t, t, y), y dropped to the null label 10 at random."""

    def __init__(self, noisy) -> None:
        super().__init__()
        self.noisy = noisy  # the page's draws of (x_t, t) for x0
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 3, padding=1)
        self.temb, self.yemb = nn.Embedding(50, 4), nn.Embedding(11, 4)

    def forward(self, x_t, t, y):
        return self.out(F.silu(self.conv1(x_t) + (self.temb(t) + self.yemb(y))[:, :, None, None]))

    def step(self, batch):
        x0, y = batch
        x_t, t = self.noisy(x0)
        noise = (x_t - x0) * 3  # any target that follows the step's draws
        y = torch.where(torch.rand(len(y)) < 0.2, torch.full_like(y, 10), y)  # label dropout
        return F.mse_loss(self(x_t, t, y), noise)

    def training_step(self, batch, batch_idx):
        return self.step(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val", self.step(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_docs_conditional_denoiser_explains_the_condition_as_a_hand_loop_and_leaves_training_bit_identical(tmp_path):
    import re
    import warnings
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "your_model.md").read_text()
    code = re.search(r"<!-- conditional denoiser -->\s*```python\n(.*?)```", page, re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md conditional denoiser>", "exec"), ns)  # noqa: S102 - the docs' own example
    g = torch.Generator().manual_seed(0)
    x0, y = torch.rand(48, 1, 8, 8, generator=g), torch.randint(0, 10, (48,), generator=g)

    def fit(callbacks):
        pl.seed_everything(0, verbose=False)
        module = Guided(ns["noisy"])
        ema = Ema()
        loaders = (torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x0[:32], y[:32]), batch_size=8, shuffle=True),
                   torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x0[32:], y[32:]), batch_size=8))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer(tmp_path / str(len(callbacks)), max_epochs=2, callbacks=[ema, *callbacks]).fit(module, *loaders)
        return module, ema.ema

    for callback in (ns["pixels"], ns["condition"]):
        callback.probe_size, callback.report_dir = 8, tmp_path / f"reports_{callback.explain}"
    (audited, ema_audited), (plain, ema_plain) = fit([ns["pixels"], ns["condition"]]), fit([])
    for name, a in plain.state_dict().items():
        assert torch.equal(a, audited.state_dict()[name]) and torch.equal(ema_plain[name], ema_audited[name]), name
    probe = ns["condition"].probe
    for a, b in zip(ns["pixels"].probe.inputs, probe.inputs):  # one probe: both drew from seed 0
        assert torch.equal(a, b)
    torch.manual_seed(0)
    x_t, t = ns["noisy"](x0[32:40])
    assert torch.equal(probe.inputs[0], x_t) and torch.equal(probe.inputs[2], y[32:40]) and probe.labels is None
    region = ns["region"]
    with torch.no_grad():  # set, rerun, difference: do(y := NULL) on the final weights (the audit ran after the last epoch)
        hand = region(plain.eval()(x_t, t, y[32:40])) - region(plain(x_t, t, torch.full((8,), ns["NULL"])))
    result = ns["condition"].last_results["condition"]
    torch.testing.assert_close(torch.tensor(result.scalars["mean_abs_effect"]), hand.abs().mean(), rtol=1e-5, atol=1e-7)
    assert set(ns["pixels"].last_results) == {"input_effect", "unit_importance"}
