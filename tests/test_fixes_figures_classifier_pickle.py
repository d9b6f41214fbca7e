"""Pickles of a LightningClassifier (carried fault): since the models load it lazily, its class lives in the private
module ``lightning_causal._lightning_classifier``, and ``pickle``/``torch.save`` of a whole module (a DataLoader worker's
copy, a spawned process, a saved model) named that path, which a later internal move would break. The class now says it
is ``lightning_causal.models.LightningClassifier``, its public path, which a pickle names and loads through the lazy
export."""

from __future__ import annotations

import io
import pickle
import pickletools

import torch
from torch import nn

from lightning_causal.models import LightningClassifier


def _globals(data: bytes) -> set[str]:
    """The module names a pickle imports (the strings pushed before each STACK_GLOBAL, and GLOBAL's own)."""
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            out.add(strings[-2])
        elif op.name == "GLOBAL":
            out.add(arg.split(" ")[0])
    return out


def test_a_pickled_classifier_names_the_public_module_and_loads():
    model = LightningClassifier(nn.Linear(3, 2), lr=0.01, optimizer="sgd")
    data = pickle.dumps(model)
    modules = _globals(data)
    assert "lightning_causal.models" in modules and not any("_lightning_classifier" in m for m in modules), modules
    loaded = pickle.loads(data)
    assert type(loaded) is LightningClassifier and (loaded.lr, loaded.optimizer_name) == (0.01, "sgd")
    x = torch.randn(4, 3)
    assert torch.equal(loaded(x), model(x))
    buffer = io.BytesIO()
    torch.save(model, buffer)  # a whole module saved: its data.pkl names the class the same way
    assert b"_lightning_classifier" not in buffer.getvalue()


def test_a_pickle_of_the_private_path_written_before_still_loads():
    from lightning_causal._lightning_classifier import LightningClassifier as private

    assert private is LightningClassifier and private.__module__ == "lightning_causal.models"
    assert pickle.loads(b"clightning_causal._lightning_classifier\nLightningClassifier\n.") is LightningClassifier
