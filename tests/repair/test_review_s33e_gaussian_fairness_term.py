"""Review of 53acfb8f (newuser67's report, not mended there): CounterfactualFairnessTerm(AttributeFlip(col),
output="mean") on a Gaussian policy (a Normal over 2 forces) compared, by its default distance, the softmax of the
action means (sym_kl too; distance='logit' their centred values, blind to a flip that moves both forces alike), in
silence. The term now warns on its first step, naming one term per coordinate with distance='logit'; that term, a
categorical policy's logits and a classifier's logits drawn from a Normal (integer class labels) stay quiet."""

import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


class Policy(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk, self.log_std = nn.Linear(5, 2), nn.Parameter(torch.zeros(2))
        self.kind = kind

    def forward(self, x: torch.Tensor):
        z = self.trunk(x)
        if self.kind == "categorical":
            return {"pi": Categorical(logits=z), "value": z.sum(1)}
        return Normal(z, self.log_std.exp().expand_as(z))  # a Gaussian policy, or a classifier's logits drawn from it


def _batch() -> torch.Tensor:
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    x[:, 4] = (x[:, 4] > 0).float()  # a lamp: the nuisance feature the term flips
    return x


def _continuous(term: CounterfactualFairnessTerm, model: nn.Module, y=None) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(model, _batch(), y)
    return [str(w.message) for w in caught if "continuous distribution" in str(w.message)]


@pytest.mark.parametrize(("distance", "said"), [(None, "class probabilities"), ("sym_kl", "class probabilities"),
                                                ("logit", "centred")])
def test_a_gaussian_policys_means_compared_as_classes_warn(distance, said: str) -> None:
    messages = _continuous(CounterfactualFairnessTerm(AttributeFlip(4), output="mean", distance=distance), Policy("normal"))
    assert len(messages) == 1 and said in messages[0] and "the Normal's mean" in messages[0], messages
    assert "`output=lambda out: out.mean[:, [k]]` with distance='logit'" in messages[0]


def test_the_per_coordinate_term_a_categorical_policy_and_a_classifier_stay_quiet() -> None:
    per_coordinate = CounterfactualFairnessTerm(AttributeFlip(4), output=lambda out: out.mean[:, [1]], distance="logit")
    assert _continuous(per_coordinate, Policy("normal")) == []
    categorical = CounterfactualFairnessTerm(AttributeFlip(4), output=lambda out: out["pi"].logits)
    assert _continuous(categorical, Policy("categorical")) == []
    labels = torch.randint(0, 2, (32,), generator=torch.Generator().manual_seed(1))  # a classifier's class labels
    assert _continuous(CounterfactualFairnessTerm(AttributeFlip(4), output="mean"), Policy("normal"), labels) == []


def test_a_one_dimensional_action_compared_as_a_probability_warns() -> None:
    """A policy of one force, Normal(mean [N, 1], std): the default distance compares the sigmoid of its mean."""
    policy = Policy("normal")
    policy.trunk, policy.log_std = nn.Linear(5, 1), nn.Parameter(torch.zeros(1))
    messages = _continuous(CounterfactualFairnessTerm(AttributeFlip(4), output="mean"), policy)
    assert len(messages) == 1 and "Pass distance='logit'" in messages[0], messages
    assert _continuous(CounterfactualFairnessTerm(AttributeFlip(4), output="mean", distance="logit"), policy) == []
