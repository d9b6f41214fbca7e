"""A model holding a ``weakref.proxy`` whose object is gone (a back-reference to a peer, a callback; also in a list, a
tuple or a dict attribute) crashed every audit and repair step: the walks over a module's attributes
(``keep_attributes``, ``helper_objects``, the batch-dependence check's kept tensors, the generators held, the repair
module's bank check, the backdoor term's frozen copy) read the dead proxy and raised ``ReferenceError``. A weak proxy is
another's object, never a state of the model's: it is passed by, and the frozen copy holds it as itself, as
``copy.deepcopy`` holds a ``weakref.ref`` (session 44's list, task leftovers_s45a)."""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import AttributeFlip, Trigger, input_effects
from lightning_causal.causal.engine.kept_attributes import (
    held_tensors,
    helper_objects,
    keep_attributes,
)
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.repair import BackdoorSuppressionTerm, CounterfactualFairnessTerm


class _Peer:
    pass


class _Store:
    def __init__(self) -> None:
        self.keys, self.ptr = torch.zeros(4, 4), 0
        peer = _Peer()
        self.owner = weakref.proxy(peer)  # dead once __init__ returns


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.store = nn.Linear(4, 2), _Store()
        peer, fn = _Peer(), (lambda z: z)
        self.peer, self.fn = weakref.proxy(peer), weakref.proxy(fn)  # both dead once __init__ returns
        self.peers, self.by_name = [weakref.proxy(peer)], {"p": weakref.proxy(peer), "q": (weakref.proxy(peer), 1)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.store.keys[self.store.ptr % 4] = x[0]  # written at every call
            self.store.ptr += 1
        return self.lin(x).log_softmax(1)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return x, torch.randint(0, 2, (16,), generator=g)


def test_the_walks_pass_a_dead_proxy_by() -> None:
    model = _Net()
    assert [name for name, _ in helper_objects(model)] == ["store"]  # found, its dead proxy aside
    assert sorted(held_tensors(model)) == ["store.keys"]
    model(_data()[0])
    keys, kept = model.store.keys.clone(), keep_attributes(model, numbers=True, helpers=True)
    model(_data()[0])
    assert [name for name, _ in kept.changed(model)] == ["store.keys"]
    kept.restore()
    assert torch.equal(model.store.keys, keys) and model.store.ptr == 1


def test_audits_and_repair_run_beside_a_dead_proxy() -> None:
    x, y = _data()
    model = _Net()
    with audit_mode(model):
        model(x)
    assert model.store.ptr == 0  # put back
    with no_trace(model):
        input_effects(model, x)
    assert model.store.ptr == 0
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)])
    out = module.training_step((x, y), 0)
    assert torch.isfinite(out["loss"] if isinstance(out, dict) else out)


def test_the_backdoor_reference_holds_the_proxy_as_itself() -> None:
    x, _ = _data()
    model = _Net()
    term = BackdoorSuppressionTerm(Trigger(mask=(torch.arange(4) == 3).float(), pattern=torch.full((4,), 3.0), target=1),
                                   distill_weight=1.0)
    term.setup(model, x)
    assert term.reference.peer is model.peer  # not a copy: a weak reference to another's object
    assert term.reference.peers[0] is model.peers[0] and term.reference.by_name["q"][0] is model.by_name["q"][0]
    assert sorted(term.state_dict()["reference_held"]) == ["store.keys"]
    assert torch.equal(term.reference(x), F.log_softmax(model.lin(x), 1))
