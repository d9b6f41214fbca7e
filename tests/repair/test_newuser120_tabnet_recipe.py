"""newuser120 trial: docs/your_model.md's TabNet recipe runs as printed; on its one-step TabNet with ghost BatchNorm,
a fairness term of a column the net cannot read is exactly 0 in training mode (before: the rows and their twins sat
in different virtual batches), that column's effects are 0, and the estimator leaves the running statistics and the
modes as it found them."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip, input_effects

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def _recipe() -> dict:
    code = re.search(r"<!-- tabnet -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {"__name__": "tabnet_recipe"}
    exec(compile(code, "<your_model.md tabnet>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns


def test_the_recipe_runs() -> None:
    ns = _recipe()
    assert ns["loss"].requires_grad and float(ns["loss"].detach()) > 0
    assert ns["mask_share"].shape == (4,) and ns["effects"].shape == (4,)
    torch.testing.assert_close(ns["mask_share"].sum(), torch.tensor(1.0))  # sparsemax rows sum to 1


def test_a_column_the_net_cannot_read() -> None:
    ns = _recipe()
    model, x = ns["model"], ns["x"]
    with torch.no_grad():  # column 3 enters neither the attentive transformer nor the feature transformer
        model.att.weight[:, 3] = 0.0
        model.fc.weight[:, 3] = 0.0
    model.train()
    loss = CounterfactualFairnessTerm(AttributeFlip(3)).loss(model, x, None)
    assert float(loss.detach()) == 0.0  # before: not 0, the twins normalised by other virtual batches
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    effects = input_effects(model, x)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    assert torch.equal(effects[:, 3], torch.zeros(x.shape[0]))
