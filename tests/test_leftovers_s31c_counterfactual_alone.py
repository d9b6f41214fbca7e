"""CounterfactualAudit on a model that rules out every class but the predicted one at some samples (``-inf``
logits): the ruled-out note advised ``towards="runner_up"``, which cannot help there (the runner-up is ruled out
too), and ``towards="runner_up"`` itself took the predicted class as the target where that is class 0 (the argmax of a
row of -inf), reporting a counterfactual found with no change (leftovers_s31c). The note now says where the advice
fits, and such a sample's runner-up target is a ruled-out class other than the predicted one."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import CounterfactualAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import CounterfactualSettings

INF = float("-inf")


class _Gated(nn.Module):
    """Columns 0-2 as logits; class 2 ruled out everywhere, class 1 too where column 3 is positive (the search gets
    no gradient through the gate, so it does not move column 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :3].clone()
        out[:, 2] = INF
        return out.masked_fill((x[:, 3:4] > 0) & (torch.arange(3) == 1), INF)


def _run(x: torch.Tensor, y: torch.Tensor, towards: str):
    audit = CounterfactualAudit(towards=towards, settings=CounterfactualSettings(steps=30, lr=0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return audit.run(_Gated(), Probe(x, y))


def _note(result) -> str:
    notes = [n for n in result.meta.get("notes", []) if "-inf" in n]
    assert len(notes) == 1
    return notes[0]


def test_where_only_the_predicted_class_is_left_the_note_does_not_advise_runner_up() -> None:
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 0.0, 0.0, 1.0]])  # class 1 gated off: class 0 alone
    note = _note(_run(x, torch.tensor([2, 2]), "label"))
    assert note.startswith("samples [0, 1] (2 of the 2 explained) have no counterfactual")
    assert note.endswith("every class but the predicted one is -inf at these samples: the model predicts no other "
                         "class there, so they have no counterfactual unless a change lifts the mask (whatever towards)")
    assert "runner_up" not in note


def test_the_advice_names_the_samples_runner_up_cannot_help() -> None:
    x = torch.tensor([[1.0, 0.0, 0.0, -1.0], [1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, -1.0]])  # sample 1: class 0 alone
    note = _note(_run(x, torch.tensor([2, 2, 2]), "label"))
    assert note.endswith('explain the classes the model can predict (a probe of those classes, or towards="runner_up", '
                         "except for samples [1] where every class but the predicted one is -inf: the model predicts no "
                         "other class there)")


def test_no_class_to_flip_to_is_no_counterfactual_found_towards_the_runner_up() -> None:
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, -1.0]])  # sample 0: class 0 alone; sample 1: runner-up 1
    result = _run(x, torch.tensor([0, 0]), "runner_up")
    rows = result.tables["counterfactuals"]
    assert [(r["predicted"], r["target"]) for r in rows] == [(0, 1), (0, 1)]  # before: sample 0's target 0, found
    assert [r["success"] for r in rows] == [False, True]
    assert _note(result).startswith("samples [0] (1 of the 2 explained) have no counterfactual")
