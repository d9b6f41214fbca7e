"""A stateful recurrent model (newuser42 trial): its hidden state carried across batches on the module
(``self.h = h.detach()``, a plain attribute or a registered buffer, as truncated back-propagation through time
is written in Lightning 2.x). The audits' forward passes must leave that state as they found it: the same seed
gives bit-identical weights and the same carried state with and without the callback. Before, a plain attribute
kept the state of the audits' last pass (training went on from it), a buffer reassigned at the probe's batch
size stopped the fit at set-up (``copy_`` of a [1, 16, 4] state into a [1, 32, 4] one), and a model that reads
its state where the batch size matches was refused for "control flow on a batch statistic"."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.causal import input_effects, unit_effects
from tests.helpers.stateful import Streaming

B, T, F, H = 16, 4, 3, 4
STEPS = torch.arange(T).reshape(1, T, 1).expand(1, T, F)


class Carried(nn.Module):
    """A GRU (or LSTM) that starts from the state its previous call left, where the batch size matches."""

    def __init__(self, lstm: bool = False, read: str = "always"):
        super().__init__()
        self.rnn = (nn.LSTM if lstm else nn.GRU)(F, H, batch_first=True)
        self.head = nn.Linear(H, 2)
        self.read, self.h = read, None

    def _start(self, n: int):
        h = self.h
        first = h[0] if isinstance(h, tuple) else h
        if h is None or first.shape[1] != n or (self.read == "train" and not self.training):
            return None
        return h

    def forward(self, x):
        out, h = self.rnn(x, self._start(x.shape[0]))
        self.h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        return self.head(out[:, -1])


@pytest.mark.parametrize("read", ["always", "train"])
@pytest.mark.parametrize("lstm", [False, True])
def test_input_effects_leave_the_carried_state_as_it_was(lstm, read):
    torch.manual_seed(0)
    m = Carried(lstm, read).eval()
    x = torch.randn(5, T, F)
    m(x)
    before = m.h
    values = [t.clone() for t in (before if lstm else (before,))]
    if read == "always":  # the probe's clean pass reads the state m(x) left: refused (it ran, silently, before newuser86)
        with pytest.raises(ValueError, match="reads a state it keeps from earlier calls: h"):
            input_effects(m, x, STEPS)
    else:
        input_effects(m, x, STEPS)
    assert m.h is before  # the state of the audits' last pass was [1, 30, 4] (5 samples x 6 groups)
    assert all(torch.equal(a, b) for a, b in zip(m.h if lstm else (m.h,), values))


def test_a_state_first_set_by_the_estimator_is_unset_again():
    torch.manual_seed(0)
    m = Carried().eval()
    input_effects(m, torch.randn(5, T, F), STEPS)
    assert m.h is None


def _fit(buffer: bool, audit: bool, tmp_path):
    pl.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, T, F, generator=g), torch.randint(0, 2, (96,), generator=g)
    model = Streaming(buffer, B, F, H)
    callbacks = [CausalAuditCallback([InputEffectAudit(feature_mask=STEPS, ace_values=None),
                                      UnitImportanceAudit(["rnn"], unit_dim=-1)], probe_size=32)] if audit else []
    trainer = pl.Trainer(max_epochs=3, callbacks=callbacks, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(TensorDataset(x[:64], y[:64]), batch_size=B, shuffle=True),
                DataLoader(TensorDataset(x[64:], y[64:]), batch_size=B))
    return model


@pytest.mark.parametrize("buffer", [False, True])
def test_a_state_carried_across_epochs_trains_alike_with_the_callback(buffer, tmp_path):
    plain, audited = _fit(buffer, False, tmp_path / "a"), _fit(buffer, True, tmp_path / "b")
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), audited.parameters()))
    assert audited.h.shape == (1, B, H) and torch.equal(plain.h, audited.h)


def test_a_state_read_where_the_batch_matches_is_named_in_the_refusal():
    torch.manual_seed(0)
    m = Carried().eval()
    x = torch.randn(6, T, F)
    m(x)  # leaves a state [1, 6, 4], read by the next pass of 6 rows
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: h .*"
                                         r"self\.training"):
        unit_effects(m, x, "rnn", unit_dim=-1)
    m.read = "train"
    m(x)
    assert unit_effects(m, x, "rnn", unit_dim=-1).shape == (6, H)
