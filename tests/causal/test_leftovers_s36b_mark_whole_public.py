"""``mark_whole`` (pass a forward argument whole to every pass, a support set whose rows equal the samples' by chance)
was named by the refusals and docs as ``from lightning_causal.causal.engine.forward_args import mark_whole``, an engine
path, and was not exported from ``lightning_causal.causal``: it is public API there now, and the refusals name the short
import."""

from __future__ import annotations

import pytest
import torch

import lightning_causal.causal as core
from lightning_causal.causal import input_effects, mark_whole
from lightning_causal.causal.engine import forward_args, in_batch_scores
from tests.test_trial_newuser65_support_rows import Prototypes, episode


def test_mark_whole_is_exported_from_the_core_as_the_engines_own():
    assert "mark_whole" in core.__all__ and mark_whole is forward_args.mark_whole


def test_the_refusals_name_the_short_import_that_works():
    x, support, support_y = episode(6)
    with pytest.raises(ValueError, match="Expected the model to treat samples independently") as err:
        input_effects(Prototypes().eval(), x, torch.arange(4), additional_forward_args=(support, support_y))
    for message in (str(err.value), in_batch_scores.IN_BATCH_FIX):
        assert "`from lightning_causal.causal import mark_whole`" in message
        assert "engine.forward_args" not in message
    effects = input_effects(Prototypes().eval(), x, torch.arange(4), additional_forward_args=mark_whole((support, support_y), [0, 1]))
    assert effects.shape == (6, 4) and bool(torch.isfinite(effects).all())
