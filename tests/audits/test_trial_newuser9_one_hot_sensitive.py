"""Group metrics of a one-hot encoded sensitive attribute (newuser9's Adult trial: race as five
get_dummies columns). The docs said to pass `sensitive=j` for the group metrics of a callable
counterfactual, but a one-hot attribute has no column j: `sensitive=["race_A", ...]` was refused
('Expected argument `sensitive` to be None or a column index'), and `sensitive="race_White"` gave
White against everyone else. `sensitive=` now takes the block's columns (names or indices)."""

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import counterfactual_fairness_gap
from lightning_causal.causal.scm.counterfactual import CallableCounterfactual

NAMES = ["age", "race_a", "race_b", "race_c"]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    level = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 2])
    age = torch.tensor([-1.0, 0.5, 1.0, 2.0, -0.5, -1.5, 0.2, 1.2, 0.8, -0.2, 0.1, 1.7])
    x = torch.cat([age[:, None], nn.functional.one_hot(level, 3).float()], 1)
    return x, torch.tensor([0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1])


def _model() -> nn.Module:
    model = nn.Linear(4, 2)
    with torch.no_grad():  # class 1 iff age + 0.5 * race_b - 1.0 * race_c > 0
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.5, -1.0]]))
        model.bias.zero_()
    return model


def _next_level(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[:, 1:4] = x[:, 1:4].roll(1, dims=1)
    return x


@pytest.mark.parametrize("sensitive", [["race_a", "race_b", "race_c"], [1, 2, 3]])
def test_the_groups_of_a_one_hot_attribute_are_its_columns(sensitive: list) -> None:
    x, y = _data()
    result = FairnessAudit(_next_level, sensitive=sensitive, feature_names=NAMES).run(_model(), Probe(x, y))
    pred = (x[:, 0] + 0.5 * x[:, 2] - x[:, 3] > 0).long()
    level = x[:, 1:].argmax(1)
    rates = [pred[level == k].double().mean().item() for k in range(3)]
    tpr = [pred[(level == k) & (y == 1)].double().mean().item() for k in range(3)]
    fpr = [pred[(level == k) & (y == 0)].double().mean().item() for k in range(3)]
    assert [(r["name"], r["count"]) for r in result.tables["groups"]] == [("race_a", 4), ("race_b", 3), ("race_c", 5)]
    assert [result.scalars[f"positive_rate/{name}"] for name in NAMES[1:]] == pytest.approx(rates)  # tags: the columns
    assert result.scalars["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates))
    assert result.scalars["equalized_odds_difference"] == pytest.approx(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))
    assert result.scalars["cf_gap"] == pytest.approx(counterfactual_fairness_gap(_model(), x, _next_level)["mean_abs"])


def test_rows_whose_block_is_not_one_hot_are_in_no_group_and_bad_blocks_are_refused() -> None:
    x, _ = _data()
    x[0, 1:] = 0.0  # no category
    cf = CallableCounterfactual(_next_level, [1, 2, 3])
    assert cf.groups(x).tolist() == [-1, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 2]
    for bad in ([1], [1, 1], [1, -2], ["race_a", 2]):
        with pytest.raises(ValueError, match="sensitive"):
            CallableCounterfactual(_next_level, bad)
    with pytest.raises(ValueError, match="sensitive.*one of `feature_names`"):
        FairnessAudit(_next_level, sensitive=["race_a", "race_x"], feature_names=NAMES)
    with pytest.raises(ValueError, match=r"D > 5"):
        FairnessAudit(_next_level, sensitive=[1, 5]).validate(_model(), Probe(x))


def test_the_recipe_for_a_one_hot_encoded_table_gives_the_group_rates_by_hand() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "class SexFlipByRace" in b)
    ns: dict = {}
    exec(compile(code, "<recipes.md: one-hot fairness>", "exec"), ns)  # noqa: S102 - the docs' own example
    x, model, block = ns["x"], ns["model"], ns["block"]
    with torch.no_grad():
        pred = model(x).argmax(1)
    race, sex = x[:, block].argmax(1), x[:, 2].long()
    rates = [pred[race == k].double().mean().item() for k in range(3)]
    assert [ns["by_race"].scalars[f"positive_rate/{name}"] for name in ns["race_columns"]] == pytest.approx(rates)
    both = [pred[3 * sex + race == k].double().mean().item() for k in range(6)]
    assert ns["by_both"].scalars["demographic_parity_difference"] == pytest.approx(max(both) - min(both))
    assert [r["name"] for r in ns["by_sex"].tables["groups"]] == ["sex_Male=0", "sex_Male=1"]
