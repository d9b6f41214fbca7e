"""InputEffectAudit on a tabular probe with a one-hot block: one group per column (the default) or
the block set to the default baseline 0 gave effects of rows with no category, silently. It now
warns, naming the block and the fix; with the block as one group and a one-hot baseline it is
silent and equals a brute-force swap to the reference category."""

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits.base import Probe

NAMES = ["age", "hours", "wc=private", "wc=self", "wc=gov"]


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    cat = torch.randint(0, 3, (32,), generator=g)
    x = torch.cat([torch.randn(32, 2, generator=g, dtype=torch.float64), nn.functional.one_hot(cat, 3).double()], 1)
    return Probe(x)


def _model() -> nn.Module:
    model = nn.Linear(5, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0] * 5, [0.5, -0.2, 1.0, 3.0, -2.0]], dtype=torch.float64))
        model.bias.zero_()
    return model


def _run(audit: InputEffectAudit) -> tuple[list[str], dict]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audit.run(_model(), _probe())
    return [str(w.message) for w in caught if "one-hot block" in str(w.message)], result


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "on its own"),
    ({"feature_mask": torch.tensor([[0, 1, 2, 2, 2]])}, r"baseline \[0.0, 0.0, 0.0\], no one-hot row"),
])
def test_one_hot_block_intervened_off_its_encoding_warns(options: dict, problem: str) -> None:
    names = NAMES if "feature_mask" not in options else ["age", "hours", "workclass"]
    messages, _ = _run(InputEffectAudit(ace_values=None, feature_names=names, **options))
    assert len(messages) == 1
    assert "['wc=private', 'wc=self', 'wc=gov']" in messages[0] or "[2, 3, 4]" in messages[0]
    assert re.search(problem, messages[0])
    assert "baseline[2] = 1.0" in messages[0]


def test_block_as_one_group_with_a_one_hot_baseline_is_silent_and_matches_brute_force() -> None:
    baseline = torch.zeros(5, dtype=torch.float64)
    baseline[2] = 1.0  # reference category: private
    messages, result = _run(InputEffectAudit(feature_mask=torch.tensor([[0, 1, 2, 2, 2]]), baseline=baseline, ace_values=None))
    assert messages == []
    x, model = _probe().first, _model()
    with torch.no_grad():
        out = model(x)
        target = out.argmax(1, keepdim=True)
        swapped = x.clone()
        swapped[:, 2:] = baseline[2:]
        effect = out.gather(1, target) - model(swapped).gather(1, target)  # do(workclass := private), by hand
    assert result.vectors["mean_abs_effect"][2].item() == pytest.approx(effect.abs().mean().item(), abs=1e-12)


def test_ace_of_a_one_hot_block_warns() -> None:
    """The ACE curve set the grouped block to all 0 / all 1: its ace_range was reported as the feature's, silently."""
    baseline = torch.zeros(5, dtype=torch.float64)
    baseline[2] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(feature_mask=torch.tensor([[0, 1, 2, 2, 2]]), baseline=baseline).run(_model(), _probe())
    messages = [str(w.message) for w in caught if "ACE curve" in str(w.message)]
    assert len(messages) == 1 and "[[2, 3, 4]]" in messages[0] and "ace_values=None" in messages[0]
