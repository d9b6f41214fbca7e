"""CausalRepairModule's default task loss, F.cross_entropy, on an in-context learner's per-query logits [B, Q, C]
beside the queries' labels [B, Q] (newuser103's trial, /tmp/newuser103/repair1.py): cross-entropy reads dimension 1
as the classes, so 5 queries of 3 classes stopped in torch's words ("Expected target size [8, 3], got [8, 5]") and 3
queries of 3 classes trained the queries as the classes without an error. The first task loss now refuses the
first (naming the transposed loss) and warns of the second, whose shapes a Conv1d's [N, C, T] shares."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm
from tests.helpers.in_context import InContext, episodes


def unpack(b):
    return (b["x_q"], b["x_ctx"], b["y_ctx"]), b["y_q"], None


def module(**kwargs) -> CausalRepairModule:
    term = CounterfactualFairnessTerm(AttributeFlip(0), sensitive=0, output=lambda out: out[:, 0])
    return CausalRepairModule(InContext(), [term], unpack_batch=unpack, explain="x_q", **kwargs)


def test_per_query_logits_of_another_width_are_refused_naming_the_transposed_loss():
    with pytest.raises(MisconfigurationException, match=r"Expected outputs \[N, C, T\].*out.transpose\(1, 2\)"):
        module().task_step(episodes(4, queries=5), 0)


def test_as_many_queries_as_classes_warn_and_the_named_loss_is_the_per_query_cross_entropy():
    b = episodes(4, queries=3)
    with pytest.warns(UserWarning, match="trains the positions as the classes without an error"):
        module().task_step(b, 0)
    repair = module(task_loss=lambda out, y: F.cross_entropy(out.transpose(1, 2), y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the named loss: no warning
        loss = repair.task_step(b, 0)
    with torch.no_grad():
        out = repair.model(b["x_q"], b["x_ctx"], b["y_ctx"])
    torch.testing.assert_close(loss, F.cross_entropy(out.flatten(0, 1), b["y_q"].flatten()))


def test_classes_first_and_other_losses_pass_as_before():
    class ClassesFirst(torch.nn.Module):  # [N, C=3, T=5], a Conv1d's layout
        def forward(self, x):
            return x.transpose(1, 2)

    repair = CausalRepairModule(ClassesFirst(), [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, y = torch.randn(4, 5, 3), torch.randint(0, 3, (4, 5))
        torch.testing.assert_close(repair.task_step((x, y), 0), F.cross_entropy(x.transpose(1, 2), y))
        module(task_loss=lambda out, y: F.cross_entropy(out.flatten(0, 1), y.flatten())).task_step(episodes(4, queries=5), 0)
