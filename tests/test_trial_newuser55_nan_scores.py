"""newuser55's trial: CaptumBaseline on a float16 model whose logits overflow on a few probe samples.

Logits past float16's 65504 are inf; where the input and the input with a group set to the baseline both give inf,
the causal effect inf - inf is NaN, and the deletion curve's ranking stopped the audit with "Expected argument
`scores` to hold no NaN but got NaN in rows [7, 11, 54]", an argument the user never passed. Those samples are now
left out of the curves' areas and drawn mean, named in a note and a warning.
"""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects


def _overflowing() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with torch.no_grad():  # class 1's logit 3e4 (tanh x_0 + 2 tanh x_1): past 65504 where both are near 1
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [3e4, 6e4, 0.0, 0.0]]))
        model[2].bias.zero_()
    return model.half().eval(), torch.randn(64, 4, generator=torch.Generator().manual_seed(0)).half()


def test_samples_whose_effects_are_nan_are_named_and_left_out_of_the_curves():
    model, x = _overflowing()
    nan_rows = input_effects(model, x, target=1).isnan().any(1).nonzero().flatten().tolist()
    assert nan_rows and bool((~model(x)[nan_rows, 1].isfinite()).all())  # inf logits there
    with pytest.warns(UserWarning, match=r"causal's scores hold NaN in samples \[" + ", ".join(map(str, nan_rows[:3]))):
        result = CaptumBaseline(("Saliency",), target=1).run(model, Probe(x))  # before: ValueError on `scores`
    assert result.meta["nan_score_samples"]["causal"] == nan_rows
    kept = [i for i in range(64) if i not in nan_rows]
    alone = CaptumBaseline(("Saliency",), target=1).run(model, Probe(x[kept]))  # the other samples' areas, by themselves
    for mode in ("deletion", "insertion"):
        assert result.meta["curve_auc"][mode]["causal"] == pytest.approx(alone.meta["curve_auc"][mode]["causal"], abs=1e-3)


def test_groups_the_model_ignores_do_not_head_the_top_table_for_their_nan_effects():
    """On the overflowing samples x_2 and x_3, which the model ignores, have effect inf - inf = NaN, so their mean
    |effect| is NaN, and InputEffectAudit's top table listed them first (torch.topk takes NaN for the largest)."""
    from lightning_causal import InputEffectAudit

    model, x = _overflowing()
    result = InputEffectAudit(target=1, ace_values=None).run(model, Probe(x))
    mean_abs = result.vectors["mean_abs_effect"]
    assert mean_abs[2].isnan() and mean_abs[3].isnan() and mean_abs[0].isinf() and mean_abs[1].isinf()
    assert [row["group"] for row in result.tables["top_groups"]] == [0, 1, 2, 3]  # inf first, NaN last, each by id
