"""A module registered under two names (tied embeddings: transformers 4's T5 holds ``shared`` also as
``encoder.embed_tokens`` and ``decoder.embed_tokens``) is listed by ``named_modules()`` once, under its first name.
Its second name was refused as unknown, with close matches that did not include the module's listed name (found
with transformers 4.53 - 4.57, where ``transformer.encoder.embed_tokens`` of T5 is such a name); the refusal now
names the module's listed name."""

import pytest
from torch import nn

from lightning_causal.causal.engine.interventions import resolve_module


def _tied() -> nn.Module:
    model = nn.Module()
    model.shared = nn.Embedding(10, 4)
    model.encoder = nn.Module()
    model.encoder.embed_tokens = model.shared  # the same module, a second name
    model.encoder.layer = nn.Linear(4, 4)
    return model


def test_a_second_name_of_a_shared_module_is_refused_naming_its_listed_name():
    model = _tied()
    assert resolve_module(model, "shared") is model.shared
    with pytest.raises(ValueError, match=r"'encoder\.embed_tokens' is the module 'shared' of model .*listed once.*name 'shared'"):
        resolve_module(model, "encoder.embed_tokens")


def test_an_unknown_name_is_still_refused_with_close_matches():
    with pytest.raises(ValueError, match=r"Unknown module name 'encoder\.layr'.*close matches: \['encoder\.layer'"):
        resolve_module(_tied(), "encoder.layr")
