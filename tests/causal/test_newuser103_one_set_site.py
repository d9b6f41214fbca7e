"""A unit site of an in-context learner that runs one episode's queries as one set, ``x_q[None]``, returns
``[1, Q, width]`` (newuser103's trial, /tmp/newuser103/audits1.py): unit effects refused it, rightly, advising
``batch_first=True``, which its layers already had. The refusal now names the set on dimension 1 and the way out,
``x[:, None]``, which the recipe's learner takes (its attention's units then give the hand-made interventions)."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import Zero, intervene, unit_effects
from lightning_causal.causal.engine.unit_sites import check_samples_first
from tests.helpers.in_context import InContext, episodes


class OneSet(InContext):
    def forward(self, x_q, x_ctx, y_ctx):  # one episode's queries run as one set: [1, Q, ...]
        return super().forward(x_q[None], x_ctx[None], y_ctx[None])[0]


def test_a_site_of_one_set_names_the_set_and_the_way_out():
    b = episodes(1)
    with pytest.raises(ValueError, match=r"puts them on dimension 1: have forward run each as a set of its own, `x\[:, None\]`"):
        unit_effects(OneSet().eval(), b["x_q"][0], "attn", unit_dim=-1, additional_forward_args=(b["x_ctx"][0], b["y_ctx"][0]))
    with pytest.raises(ValueError, match="batch_first=True") as err:  # time-major [T, N, D] keeps its advice alone
        check_samples_first("rnn", (7, 4, 5), 4)
    assert "one set" not in str(err.value)


def test_queries_first_give_the_hand_interventions():
    b = episodes(1)
    model, x_q, args = InContext().eval(), b["x_q"][0], (b["x_ctx"][0], b["y_ctx"][0])
    effects = unit_effects(model, x_q, "attn", unit_dim=-1, additional_forward_args=args)
    with torch.no_grad():
        clean = model(x_q, *args)
        t = clean.argmax(1, keepdim=True)
        for u in (0, 5):
            with intervene(model, {"attn": Zero(units=[u], unit_dim=-1)}):
                torch.testing.assert_close(effects[:, u], (clean.gather(1, t) - model(x_q, *args).gather(1, t))[:, 0])
