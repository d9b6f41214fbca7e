"""A repair term of one's own written after ``RepairTerm.loss(model, x, y)``, the base class's signature, met
a batch with forward arguments (``unpack_batch`` returning an attention mask) with a bare ``TypeError`` from
inside the step (mypy had flagged the call: the objective passes ``additional_forward_args=``, which the
base signature does not name). Such a term is now refused with a ``MisconfigurationException`` naming the
term and the keyword to add; terms that take it (or ``**kwargs``) receive the arguments; batches without
forward arguments call ``loss(model, x, y)`` as before."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.repair import RepairTerm
from lightning_causal.repair.objective import add_terms


class Plain(RepairTerm):
    def loss(self, model, x, y):
        return model(x).sum()


class Taking(RepairTerm):
    def loss(self, model, x, y, *, additional_forward_args=None):
        return model(x).sum() + additional_forward_args["w"].sum()


class Kwargs(RepairTerm):
    def loss(self, model, x, y, **kwargs):
        return kwargs["additional_forward_args"]["w"].sum()


def _model() -> nn.Linear:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    return model


X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # model(X).sum() = 3 + 7 = 10
ARGS = {"w": torch.tensor([0.5, 1.5])}  # sum 2


def test_a_term_without_the_keyword_is_refused_naming_it_on_a_batch_with_forward_arguments():
    with pytest.raises(MisconfigurationException, match=r"term 'mine' \(Plain\) to take `additional_forward_args=`.*\['w'\]"):
        add_terms(_model(), torch.tensor(0.0), [(Plain(name="mine"), 1.0)], {}, (X, None, ARGS), 0)


@pytest.mark.parametrize(("term", "expected"), [(Taking(), 12.0), (Kwargs(), 2.0)])
def test_terms_that_take_the_keyword_receive_the_arguments(term, expected):
    total, logs = add_terms(_model(), torch.tensor(1.0), [(term, 2.0)], {}, (X, None, ARGS), 0)
    assert float(logs[f"repair/{term.name}"]) == expected
    assert float(total.detach()) == 1.0 + 2.0 * expected


def test_without_forward_arguments_the_base_signature_is_called():
    total, logs = add_terms(_model(), torch.tensor(0.0), [(Plain(), 1.0)], {}, (X, None, None), 0)
    assert float(total.detach()) == 10.0


def test_the_loss_signature_is_read_once_per_term_class_not_at_every_step(monkeypatch):
    # add_terms runs at every training step: the check of the term's signature must not cost an
    # inspect.signature per step (review of the change: ~15 us per step and term before)
    from lightning_causal.repair import objective

    calls = []
    real = objective.inspect.signature
    monkeypatch.setattr(objective.inspect, "signature", lambda f: calls.append(f) or real(f))

    class Once(RepairTerm):
        def loss(self, model, x, y, *, additional_forward_args=None):
            return model(x).sum()

    for term in (Once(), Once(), Once()):
        _, logs = add_terms(_model(), torch.tensor(0.0), [(term, 1.0)], {}, (X, None, ARGS), 0)
        assert float(logs["repair/once"]) == 10.0
    assert calls == [Once.loss]
