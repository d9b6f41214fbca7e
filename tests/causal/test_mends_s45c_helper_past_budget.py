"""A helper object past ``KEPT_HELPER_BYTES`` was never copied (leftovers_s45a): one the forward writes in eval mode
(and reads) no longer trained bit-identically with and without the callback's audits (warned once). Now such an object
is copied until a keep has seen it unwritten (its tensors' versions unchanged at ``restore``), then no longer (a
``torch_ema``-style shadow list); one found written after (read-only at first) is warned of, once, and copied again from
then on (task mends_s45c)."""

from __future__ import annotations

import gc
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.engine import kept_attributes
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.lightning import quick_trainer


class _Record:
    """A user's record the forward adds to at every call, in eval mode too, and reads back in training (12 MB: past the
    8 MiB budget)."""

    def __init__(self, n: int = 3_000_000) -> None:
        self.acc = torch.zeros(n)


_Record.__module__ = "user_model"


def _helper_warnings(fn) -> list[str]:  # noqa: ANN001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "helper object" in str(w.message)]


def test_a_large_helper_written_in_eval_mode_trains_bit_identically_with_the_callback(tmp_path) -> None:  # noqa: ANN001
    import lightning.pytorch as pl

    from lightning_causal.audits import InputEffectAudit
    from lightning_causal.callbacks import CausalAuditCallback

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2, self.rec = nn.Linear(5, 8), nn.Linear(8, 3), _Record()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.l1(x).relu()
            with torch.no_grad():
                self.rec.acc[:8] += h.detach().mean(0)  # in eval mode too
            return self.l2(h + 0.01 * self.rec.acc[:8] if self.training else h)  # read in training: what it trains on

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):  # noqa: ANN201
            return torch.optim.SGD(self.parameters(), lr=0.1)

    fitted, found = [], []
    for audited in (True, False):
        torch.manual_seed(0)
        data = TensorDataset(torch.randn(48, 5), torch.randint(0, 3, (48,)))
        model = Net()
        callbacks = [CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)] if audited else []
        trainer = quick_trainer(max_epochs=2, callbacks=callbacks, num_sanity_val_steps=0, default_root_dir=tmp_path)
        loaders = DataLoader(data, batch_size=16), DataLoader(data, batch_size=16)
        found += _helper_warnings(lambda t=trainer, m=model, d=loaders: t.fit(m, *d))
        fitted.append(model)
    audited, plain = fitted
    assert found == []
    for (name, a), b in zip(audited.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(audited.rec.acc, plain.rec.acc)  # the record holds training's writes only


class _ShadowList:
    """``torch_ema``'s layout: copies of the weights, never written by the forward."""

    def __init__(self, n: int = 64) -> None:
        self.shadow_params = [torch.zeros(n), torch.zeros(n)]


class _Net(nn.Module):
    def __init__(self, helper: object, write: bool = False) -> None:
        super().__init__()
        self.lin, self.helper, self.write = nn.Linear(4, 2), helper, write

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.write:
            self.helper.shadow_params[0][:4] += 1.0
        return self.lin(x)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept_attributes, "KEPT_HELPER_BYTES", 100)  # two tensors of 64 float32: 512 bytes, past it


def _copied(model: nn.Module, passes: int = 1) -> list[bool]:
    kept = keep_attributes(model, helpers=True)
    for _ in range(passes):
        Forward(model)(torch.randn(3, 4))  # an estimator's pass
    kept.restore()
    return [c is not None for *_, c in kept.copies]


def test_a_shadow_list_is_copied_at_the_first_keep_and_not_at_the_later_ones(small_budget: None) -> None:
    model = _Net(_ShadowList()).eval()
    assert _copied(model, passes=0) == [True, True]  # a keep around no pass (a refusal before any) decides nothing
    assert [_copied(model) for _ in range(3)] == [[True, True], [False, False], [False, False]]
    other = _Net(_ShadowList()).eval()  # another object: copied at its first keep, whatever the first one's fate
    assert _copied(other) == [True, True]


def test_a_helper_written_at_its_first_keep_is_copied_and_put_back_at_every_keep(small_budget: None) -> None:
    model = _Net(_ShadowList(), write=True).eval()
    assert _helper_warnings(lambda: [_copied(model) for _ in range(3)]) == []
    assert _copied(model) == [True, True]
    assert model.helper.shadow_params[0].abs().sum().item() == 0.0  # every write put back


def test_one_read_only_at_first_and_written_later_is_warned_once_then_copied_again(small_budget: None) -> None:
    model = _Net(_ShadowList()).eval()
    x = torch.randn(3, 4)
    with audit_mode(model):
        Forward(model)(x)  # unwritten: not copied from now on
    model.write = True

    def audits() -> None:
        for _ in range(3):
            with audit_mode(model):
                Forward(model)(x)

    found = _helper_warnings(audits)
    assert len(found) == 1 and "'helper' (_ShadowList)" in found[0] and "register_buffer" in found[0]
    assert model.helper.shadow_params[0][:4].tolist() == [1.0] * 4  # the one uncopied audit's write stays (warned)
    assert _copied(model) == [True, True]  # copied again: the later audits' writes were put back


def test_the_marks_hold_no_object_alive_and_an_object_without_weak_references_is_always_copied(small_budget: None) -> None:
    class Slotted:
        __slots__ = ("__dict__",)  # a helper object (a __dict__) that takes no weak reference

        def __init__(self) -> None:
            self.shadow_params = [torch.zeros(64), torch.zeros(64)]

    slotted = _Net(Slotted()).eval()
    assert [_copied(slotted) for _ in range(2)] == [[True, True], [True, True]]
    model = _Net(_ShadowList()).eval()
    _copied(model)
    helper = model.helper
    assert helper in kept_attributes._READ_ONLY
    ref = __import__("weakref").ref(helper)
    del model, helper
    gc.collect()
    assert ref() is None
