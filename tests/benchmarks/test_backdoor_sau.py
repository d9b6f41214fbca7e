"""``benchmarks/backdoor_sau.py`` (a development-set study, issue 17): its method names are checked before a run, and
its shared adversarial examples stay in their budget and fool the pre-repair model where SAU's attack can."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks import backdoor_sau as sau


def test_method_names_parse_and_refuse_with_the_form():
    assert sau.method_parts("sau:l1-9:5:0.1") == (False, "l1", 9.0, 5, 0.1, "")
    assert sau.method_parts("rsau:linf0.1:3:1:uc") == (True, "linf", 0.1, 3, 1.0, "uc")
    for bad in ("sau:l9:5:0.1", "sau:l1-9:0:0.1", "sau:l1-9:5:0.1:x", "sau:linf-1:5:1", "rnp:l1-9:5:1", "sau:l1-9"):
        with pytest.raises(ValueError, match=rf"sau:<linf<eps>\|l1-<k>>.*{bad!r}".replace("[", r"\[")):
            sau.method_parts(bad)


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


@pytest.mark.parametrize("kind,budget", [("linf", 0.1), ("l1", 3.0)])
def test_shared_examples_stay_in_budget_and_leave_the_model_mode(kind, budget):
    model, ref = _model(0).train(), sau.frozen(_model(1))
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(16) % 10
    xa = sau.shared_examples(model, ref, x, y, kind, budget, 5, torch.Generator().manual_seed(3))
    assert model.training and xa.shape == x.shape and not xa.requires_grad
    assert xa.min() >= 0 and xa.max() <= 1
    if kind == "linf":
        assert (xa - x).abs().max() <= budget + 1e-6
    else:  # x' = (1 - m) x + m p with 0 <= m <= 1 and |m|_1 <= k: at most k pixels' worth of change per image
        assert ((xa - x).abs().flatten(1).sum(1) <= budget + 1e-5).all()
    # the attack raises the log-probability that both models agree on a wrong class over its random start
    wrong = ~torch.nn.functional.one_hot(y, 10).bool()
    agree = lambda z: (model(z).softmax(1) * ref(z).softmax(1) * wrong).sum(1).log().mean()  # noqa: E731
    start = sau.shared_examples(model, ref, x, y, kind, budget, 1, torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert agree(xa) > agree(start)


def test_unlearning_loss_counts_only_shared_wrong_predictions():
    ref = sau.frozen(_model(0))
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        pred = ref(x).argmax(1)
    # the same model: every example is shared; labelled with the prediction, none is wrong, so the loss is 0
    assert sau.unlearning_loss(_model(0), ref, x, pred, "") == 0
    loss = sau.unlearning_loss(_model(0), ref, x, (pred + 1) % 10, "")
    assert loss > 0
    # u: the most common wrong class keeps weight 1, so the weighted loss is at most the plain one
    assert sau.unlearning_loss(_model(0), ref, x, (pred + 1) % 10, "u") <= loss
