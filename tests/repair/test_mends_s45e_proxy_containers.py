"""BackdoorSuppressionTerm.setup holds a weak proxy as itself wherever the model keeps one: in an OrderedDict, a
defaultdict, a list in a dict, a dict in a list (a dead one raised ReferenceError in deepcopy; a live one in an
OrderedDict was copied through to its object)."""

from __future__ import annotations

import collections
import weakref

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm, Trigger


class _Peer:
    pass


_HOLDERS = {
    "OrderedDict": lambda p: collections.OrderedDict(a=p),
    "defaultdict": lambda p: collections.defaultdict(list, a=p),
    "list in a dict": lambda p: {"a": [p]},
    "dict in a list in a dict": lambda p: {"a": [{"b": (1, p)}]},
}


def _term() -> BackdoorSuppressionTerm:
    trigger = Trigger(mask=torch.tensor([0.0, 0.0, 0.0, 1.0]), pattern=torch.tensor([0.0, 0.0, 0.0, 5.0]), target=1)
    return BackdoorSuppressionTerm(trigger, distill_weight=1.0, augment=None)


def _model(holder: str, peer: _Peer) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).train()
    model[0].peers = _HOLDERS[holder](weakref.proxy(peer))
    return model


def _proxy(peers: object) -> object:
    """The proxy a holder of :data:`_HOLDERS` keeps."""
    p = peers["a"]
    return p[0]["b"][1] if type(p) is list and type(p[0]) is dict else p[0] if type(p) is list else p  # type(): a dead
    # proxy raises at isinstance


@pytest.mark.parametrize("holder", list(_HOLDERS))
def test_a_dead_proxy_anywhere_is_held_as_itself(holder: str) -> None:
    model = _model(holder, _Peer())  # the peer is gone once _model returns
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    term = _term()
    term.setup(model, x)
    assert torch.isfinite(term.loss(model, x, y))
    assert _proxy(term.reference[0].peers) is _proxy(model[0].peers)


@pytest.mark.parametrize("holder", list(_HOLDERS))
def test_a_live_proxy_anywhere_is_not_copied_through(holder: str) -> None:
    peer = _Peer()
    model = _model(holder, peer)
    term = _term()
    term.setup(model, torch.randn(16, 4))
    held = _proxy(term.reference[0].peers)
    assert type(held) is weakref.ProxyType and held is _proxy(model[0].peers)
