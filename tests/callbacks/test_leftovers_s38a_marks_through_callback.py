"""The callback hands the probe's marks (an observation mask's 0, each step's time stamp) to the renderer: at an audit
that draws its figures (``render``) and at the last audit of a fit whose figures ``figures_every_n_audits`` left for
the end (``render_figures``), however ``unpack_batch`` passes them. Before, no test held either hand-off, and time
stamps passed as an input beside keyword forward arguments under ``explain=`` (``((x, times), y, {"attention_mask":
m})``: the wrapper carries ``times`` under the key ``_input_1``) were not read: the heatmaps' time axis showed step
indices. ``model_keywords`` names such keys by ``forward``'s parameters, for the marks and the audits' padding alike."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.chosen_input import chosen_input
from lightning_causal.reporting.map_data import probe_marks
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.callbacks.test_figures_every_n_audits import _StopAfter
from tests.helpers.lightning import quick_trainer

N, T, C = 6, 5, 2


def _series() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(N, T, C, generator=g) < 0.6
    mask[:, 0] = True
    values = torch.randn(N, T, C, generator=g) * mask
    times = torch.cumsum(0.1 + torch.rand(N, T, generator=g), 1)
    return values, mask, times


class Stamped(pl.LightningModule):
    """``forward(values [N, T, C], times [N, T], attention_mask [N, T, C] = None)``, an irregular series' model."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(T * C + T, 2)

    def forward(self, values, times, attention_mask=None):
        return self.head(torch.cat([(values * attention_mask).flatten(1), times], 1))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch["values"], batch["times"], batch["attention_mask"]), batch["y"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class Dicts(Dataset):
    def __init__(self) -> None:
        self.values, self.mask, self.times = _series()

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        return {"values": self.values[i], "times": self.times[i], "attention_mask": self.mask[i].float(), "y": i % 2}


# every way unpack_batch may pass the marks, explained input "values" chosen by explain= where there are several inputs
WAYS = {
    "times an input, the mask a keyword": (lambda b: ((b["values"], b["times"]), b["y"], {"attention_mask": b["attention_mask"]}), "values"),
    "times an input, the mask positional": (lambda b: ((b["values"], b["times"]), b["y"], (b["attention_mask"],)), "values"),
    "every one an input": (lambda b: ((b["values"], b["times"], b["attention_mask"]), b["y"], None), "values"),
    "both keywords, one input": (lambda b: (b["values"], b["y"], {"times": b["times"], "attention_mask": b["attention_mask"]}), None),
}


def _handed(monkeypatch, root, way: str, *, every: int = 1, max_epochs: int = 1, stop: int | None = None) -> dict:
    """What the callback hands the renderer: ``{"render": [(figures, marks)...], "render_figures": [marks...]}``."""
    seen: dict = {"render": [], "render_figures": []}

    def render(self, writer, epoch, results, inputs, **kw):
        seen["render"].append((kw["figures"], kw["probe_unobserved"], kw["probe_times"]))

    def render_figures(self, writer, results, inputs, **kw):
        seen["render_figures"].append((True, kw["probe_unobserved"], kw["probe_times"]))

    monkeypatch.setattr(TensorBoardRenderer, "render", render)
    monkeypatch.setattr(TensorBoardRenderer, "render_figures", render_figures)
    unpack_batch, explain = WAYS[way]
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=N, unpack_batch=unpack_batch, explain=explain,
                             figures_every_n_audits=every)
    quick_trainer(callbacks=[cb, *([_StopAfter(stop)] if stop is not None else [])], max_epochs=max_epochs,
                  num_sanity_val_steps=0, default_root_dir=root, logger=TensorBoardLogger(root, name="", version="")).fit(
        Stamped(), DataLoader(Dicts(), batch_size=3))
    return seen


def _assert_marks(unobserved, times) -> None:
    _, mask, stamps = _series()
    assert unobserved is not None and torch.equal(unobserved, ~mask)
    assert times is not None and torch.equal(times, stamps)


@pytest.mark.parametrize("way", list(WAYS))
def test_an_audit_drawn_at_its_epoch_hands_the_marks_to_render(monkeypatch, tmp_path, way):
    seen = _handed(monkeypatch, tmp_path, way)
    [(figures, unobserved, times)] = seen["render"]
    assert figures and not seen["render_figures"]
    _assert_marks(unobserved, times)


def test_the_last_audit_drawn_when_training_ends_hands_the_marks_to_render_figures(monkeypatch, tmp_path):
    seen = _handed(monkeypatch, tmp_path, "times an input, the mask a keyword", every=5, max_epochs=4, stop=1)
    assert [f for f, _, _ in seen["render"]] == [True, False]  # the first audit drawn, the second (the last) left
    [(_, unobserved, times)] = seen["render_figures"]  # ... for the end of training
    _assert_marks(unobserved, times)


def test_inputs_carried_as_keywords_are_named_by_forwards_parameters():
    values, mask, times = _series()
    model = Stamped()
    wrapper, x, args = chosen_input(model, (values, times, mask.float()), 0, {})  # a mapping: the others as keywords
    assert set(args) == {"_input_1", "_input_2"}
    unobserved, stamps = probe_marks(wrapper, x, args)
    assert torch.equal(unobserved, ~mask) and torch.equal(stamps, times)
    # the audits read the same padding as with the others positional (the mask as the model's attention_mask)
    positional = chosen_input(model, (values, times, mask.float()), 0)
    assert torch.equal(padding_positions(x, args, model=wrapper), padding_positions(*positional[1:], model=positional[0]))
