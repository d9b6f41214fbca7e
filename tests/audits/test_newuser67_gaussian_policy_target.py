"""A Gaussian policy (a continuous action of 2 forces) returning a ``torch.distributions.Normal`` (or holding one in
a mapping) was explained with ``target=None`` as "each sample's predicted class": the largest of its action means,
force x for some states and force y for others, with no warning (its probe holds states, no labels). The audits
now warn, naming ``target=k`` (found by newuser67). A categorical policy's logits and a Q-network stay quiet."""

import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

from lightning_causal.audits import (
    CaptumBaseline,
    CausalGraphAudit,
    CounterfactualAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
    UnitImportanceAudit,
)


class GaussianPolicy(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.mu = nn.Linear(8, 2)
        self.sd = nn.Linear(8, 2)  # a state-dependent spread
        self.kind = kind

    def forward(self, obs: torch.Tensor):
        h = self.trunk(obs)
        mu, std = self.mu(h), nn.functional.softplus(self.sd(h)) + 1e-3
        if self.kind == "normal":
            return Normal(mu, std)
        if self.kind == "independent":
            return Independent(Normal(mu, std), 1)
        if self.kind == "mapping":
            return {"dist": Normal(mu, std), "value": mu.sum(1)}
        return {"pi": Categorical(logits=mu), "value": mu.sum(1)}  # a categorical policy of 2 actions


def _warnings(audit, model) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1))))
    return [str(w.message) for w in caught if "continuous distribution" in str(w.message) and "predicted class" in str(w.message)]


AUDITS = {
    "input": lambda output: InputEffectAudit(output=output, ace_values=None),
    "units": lambda output: UnitImportanceAudit(["trunk.1"], output=output),
    "graph": lambda output: CausalGraphAudit(["trunk.1"], output=output, stability_resamples=0),
    "layer_map": lambda output: LayerMapAudit(output=output),
    "sobol": lambda output: SobolAudit(output=output, probability=False, n=64, n_bootstrap=2),
    "captum": lambda output: CaptumBaseline(methods=("Saliency",), output=output),
}


@pytest.mark.parametrize("audit", sorted(AUDITS))
@pytest.mark.parametrize(("kind", "output"), [("normal", "mean"), ("independent", "mean"), ("normal", "stddev"),
                                              ("mapping", lambda out: out["dist"].mean)])
def test_target_none_on_a_continuous_distribution_warns(audit: str, kind: str, output) -> None:
    messages = _warnings(AUDITS[audit](output), GaussianPolicy(kind))
    assert len(messages) == 1, messages
    assert "Normal" in messages[0] and "`target=k`" in messages[0]


@pytest.mark.parametrize(("kind", "output"), [("categorical", lambda out: out["pi"].logits), ("normal", "mean")])
def test_no_warning_for_class_scores_or_a_chosen_target(kind: str, output) -> None:
    model = GaussianPolicy(kind)
    if kind == "categorical":  # a categorical policy's logits: the largest is the greedy action
        assert _warnings(InputEffectAudit(output=output, ace_values=None), model) == []
    else:  # target=k explains action dimension k: nothing to warn of
        assert _warnings(InputEffectAudit(output=output, target=1, ace_values=None), model) == []


@pytest.mark.parametrize("kind", ["normal", "mapping"])
def test_counterfactual_audit_refuses_a_continuous_action(kind: str) -> None:
    """towards='runner_up' flipped the largest action mean to the other (16 of 16 'succeeded'), in silence."""
    output = "mean" if kind == "normal" else (lambda out: out["dist"].mean)
    probe = Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match=r"the Normal's mean, a continuous distribution .*InputEffectAudit\(target=k\)"):
        CounterfactualAudit(towards="runner_up", output=output).validate(GaussianPolicy(kind), probe)
    CounterfactualAudit(towards="runner_up", output=lambda out: out["pi"].logits).validate(GaussianPolicy("categorical"), probe)


def _softmax_warnings(audit, model) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1))))
    return [str(w.message) for w in caught if "softmax" in str(w.message) and "continuous distribution" in str(w.message)]


@pytest.mark.parametrize("kind", ["normal", "mapping"])
def test_softmax_over_a_continuous_action_warns(kind: str) -> None:
    """SobolAudit(output='mean', target=0) explained softmax(action means)[0], and CaptumBaseline's deletion and
    insertion curves the same softmax, in silence: no probability of a continuous action."""
    output = "mean" if kind == "normal" else (lambda out: out["dist"].mean)
    model = GaussianPolicy(kind)
    sobol = _softmax_warnings(SobolAudit(output=output, target=0, n=64, n_bootstrap=2), model)
    assert len(sobol) == 1 and "`probability=False`" in sobol[0]
    captum = _softmax_warnings(CaptumBaseline(methods=("Saliency",), output=output, target=0), model)
    assert len(captum) == 1 and "score='raw'" in captum[0]
    assert _softmax_warnings(SobolAudit(output=output, target=0, probability=False, n=64, n_bootstrap=2), model) == []
    categorical = GaussianPolicy("categorical")
    assert _softmax_warnings(SobolAudit(output=lambda out: out["pi"].logits, target=0, n=64, n_bootstrap=2), categorical) == []


def test_fairness_audit_on_a_continuous_action_warns() -> None:
    """FairnessAudit(AttributeFlip(3), output='mean') compared softmax(action means) before and after the flip (cf_gap
    0.098, cf_flip_rate 0.19 of the largest coordinate) in silence."""
    from lightning_causal.audits import FairnessAudit
    from lightning_causal.causal import AttributeFlip

    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0).float()
    for kind, output in (("normal", "mean"), ("mapping", lambda out: out["dist"].mean)):
        with pytest.warns(UserWarning, match=r"FairnessAudit .*the Normal's mean, a continuous distribution"):
            FairnessAudit(AttributeFlip(3), output=output).validate(GaussianPolicy(kind), Probe(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        FairnessAudit(AttributeFlip(3), output=lambda out: out["pi"].logits).validate(GaussianPolicy("categorical"), Probe(x))


def test_a_tanh_squashed_policy_read_through_its_base_warns() -> None:
    """A SAC-style policy, TransformedDistribution(Normal(mu, std), [TanhTransform()]), whose mean torch leaves
    unimplemented, is read through its base: `output=lambda out: out.base_dist.mean`."""
    from torch.distributions import TanhTransform, TransformedDistribution

    class Squashed(GaussianPolicy):
        def forward(self, obs):
            return TransformedDistribution(super().forward(obs), [TanhTransform()])

    messages = _warnings(InputEffectAudit(output=lambda out: out.base_dist.mean, ace_values=None), Squashed("normal"))
    assert len(messages) == 1 and "the Normal's mean" in messages[0]

