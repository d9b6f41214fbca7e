"""newuser37: class_names across a head grown from 5 to 10 classes (class-incremental learning).

CausalGraphAudit and CounterfactualAudit asked for exactly one name per output, so no list served both heads: 10
names were refused at the first audit ("one name per class (5) but got 10"), 5 names after the growth. The other
audits took a list of at least as many names. Both now accept more names than outputs (fewer are refused as
before), and the names' error of the other audits says how wide the output is and what to do.
"""

import pytest
import torch
from torch import nn

from lightning_causal import CausalGraphAudit, CounterfactualAudit, InputEffectAudit, Probe
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings

NAMES = [f"class {c}" for c in range(10)]


def _head(n_classes: int, favoured: int | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, n_classes)).eval()
    if favoured is not None:
        with torch.no_grad():
            net[2].bias[favoured] = 10.0  # every sample predicted as `favoured`
    return net


def test_one_list_of_names_serves_the_graph_before_and_after_the_head_grew():
    probe = Probe(torch.randn(16, 4))
    audit = CausalGraphAudit(["1"], stability_resamples=0, class_names=NAMES)
    before = audit.run(_head(5), probe)  # refused before: one name per class (5) but got 10
    after = audit.run(_head(10), probe)
    assert before.graphs["causal_graph"]["meta"]["class_names"] == after.graphs["causal_graph"]["meta"]["class_names"] == NAMES
    with pytest.raises(ValueError, match=r"`class_names` to hold one name per class \(10\) but got 5"):
        CausalGraphAudit(["1"], stability_resamples=0, class_names=NAMES[:5]).run(_head(10), probe)


def test_the_counterfactual_audit_takes_the_names_of_the_grown_head_too():
    probe = Probe(torch.randn(4, 4), torch.tensor([0, 1, 2, 3]))
    result = CounterfactualAudit(class_names=NAMES, max_samples=1, settings=CounterfactualSettings(steps=2)).run(_head(5), probe)
    assert result.meta["class_names"] == NAMES


def test_too_few_names_for_the_grown_head_say_the_output_width():
    probe = Probe(torch.randn(4, 4))
    with pytest.raises(ValueError, match=r"name class 7 but it holds 5 names; the explained output has 10 columns .*name every class"):
        InputEffectAudit(class_names=NAMES[:5], ace_values=None).run(_head(10, favoured=7), probe)
