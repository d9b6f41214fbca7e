"""An in-context learner's episode batches ``{"x_ctx", "y_ctx", "x_q", "y_q"}`` beside ``forward(x_q, x_ctx, y_ctx)``
(newuser103's trial, /tmp/newuser103/cb1.py): no key is a default input, and the refusal's advice listed every key
in the batch's order as the inputs, the query labels ``y_q`` given to the model and no labels,
``((batch['x_ctx'], batch['y_ctx'], batch['x_q'], batch['y_q']), None, None)``. The refusal (of the callback's probe
and of ``CausalRepairModule``'s batches) now passes forward's keys in its order, the key left as the labels, with
``explain=`` the first."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal import (
    AttributeFlip,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    InputEffectAudit,
    audit_model,
)
from lightning_causal.batches import default_unpack_batch
from tests.helpers.in_context import InContext, episodes

FIX = "unpack_batch=lambda batch: ((batch['x_q'], batch['x_ctx'], batch['y_ctx']), batch['y_q'], None)`, with `explain='x_q'`"


def loader() -> DataLoader:
    b = episodes(8)
    return DataLoader([{k: v[i] for k, v in b.items()} for i in range(8)], batch_size=4)


def test_the_probe_refusal_passes_forwards_keys_and_its_fix_gives_the_hand_loop():
    model = InContext().eval()
    with pytest.raises(MisconfigurationException, match="cannot read the probe batch") as err:
        audit_model(model, [InputEffectAudit(ace_values=None)], loader(), probe_size=8)
    assert FIX in str(err.value) and "batch['y_q']), None, None)" not in str(err.value)
    fix = eval(FIX.split("=", 1)[1].split("`")[0])  # noqa: S307 - the refusal's own lambda
    first_query = InputEffectAudit(ace_values=None, output=lambda out: out[:, 0])  # each episode's query 0: [B, C]
    result = audit_model(model, [first_query], loader(), probe_size=8, unpack_batch=lambda b: (*fix(b)[:1], fix(b)[1][:, 0], None),
                         explain="x_q")[0]
    b = episodes(8)
    with torch.no_grad():  # do(x_q[:, 0, j] := 0) of the predicted class, by hand; the other queries move nothing
        clean = model(b["x_q"], b["x_ctx"], b["y_ctx"])[:, 0]
        t = clean.argmax(1, keepdim=True)
        hand = torch.zeros(8, 5, 4)
        for j in range(4):
            zeroed = b["x_q"].clone()
            zeroed[:, 0, j] = 0
            hand[:, 0, j] = (clean.gather(1, t) - model(zeroed, b["x_ctx"], b["y_ctx"])[:, 0].gather(1, t))[:, 0]
    torch.testing.assert_close(result.maps["effect"], hand)


def test_the_repair_module_refuses_with_the_same_fix():
    module = CausalRepairModule(InContext(), [CounterfactualFairnessTerm(AttributeFlip(0), sensitive=0)])
    with pytest.raises(MisconfigurationException, match="CausalRepairModule cannot read the batch") as err:
        module.unpack(episodes(4))
    assert FIX in str(err.value)


def test_without_forward_the_advice_is_as_before():
    with pytest.raises(ValueError, match=r"\(\(batch\['x_ctx'\], batch\['y_ctx'\], batch\['x_q'\], batch\['y_q'\]\), None, None\)"):
        default_unpack_batch(episodes(2))
    with pytest.raises(ValueError, match=r"batch\['y_q'\]\), None, None\)"):  # forward names no key of the batch
        default_unpack_batch(episodes(2), lambda x, mask=None: None)
