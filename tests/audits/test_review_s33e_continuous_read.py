"""Review of 855efce3 / 7e2c45d7 (continuous_distribution_read): the check that warns of, and refuses in
CounterfactualAudit, a continuous action's means read with target=None took genuine classifiers for Gaussian policies
and could crash an audit that ran before it was added:

- a heteroscedastic classifier (a Normal over its logits, read as ``out["logits"].mean``) with its integer class
  labels, and an evidential classifier (a Dirichlet, read as its mean: the class probabilities), were warned about as
  "a continuous action?" and refused by CounterfactualAudit;
- a hybrid-action policy whose freshly zeroed heads give logits equal to its Normal's mean (both 0) was refused when
  its logits, not the Normal, were explained;
- a distribution of the user's whose ``mean`` raises anything but NotImplementedError, and a forward that needs several
  rows (batch statistics in eval mode), crashed InputEffectAudit and CounterfactualAudit in the check's own one-row pass
  (torch's "Expected more than 1 value per channel"), where the audit's own refusal, or none, came before.

The Gaussian, Beta and tanh-squashed policies the check was built for are still warned about and refused."""

import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Beta, Dirichlet, Distribution, Normal, constraints

from lightning_causal.audits import CounterfactualAudit, InputEffectAudit, Probe


class Weird(Distribution):
    """A user's distribution whose moments raise what torch's own never do."""

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, z: torch.Tensor) -> None:
        self.z = z
        super().__init__(z.shape[:1], z.shape[1:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        raise RuntimeError("this distribution has no mean")

    @property
    def variance(self) -> torch.Tensor:
        raise TypeError("nor a variance")


class Net(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head, self.spread = nn.Linear(4, 8), nn.Linear(8, 3), nn.Linear(8, 3)
        self.kind = kind

    def forward(self, x: torch.Tensor):
        h = torch.tanh(self.body(x))
        z, s = self.head(h), nn.functional.softplus(self.spread(h)) + 0.1
        if self.kind == "heteroscedastic":  # Kendall & Gal: a Normal over the logits
            return {"logits": Normal(z, s)}
        if self.kind == "evidential":  # a Dirichlet over the class probabilities
            return Dirichlet(torch.exp(z) + 1.0)
        if self.kind == "hybrid":  # a discrete choice and its continuous parameters, both heads zeroed at the start
            return {"logits": z * 0.0, "dist": Normal(z * 0.0, s)}
        if self.kind == "weird":
            return Weird(z)
        if self.kind == "batch_stats":  # batch statistics whatever the mode
            return {"logits": nn.functional.batch_norm(z, None, None, training=True)}
        if self.kind == "gaussian_beside_mean":  # the mean held beside its Normal: the same tensor
            return {"mean": z, "dist": Normal(z, s)}
        if self.kind == "beta":
            return Beta(s, s + z.abs())
        return Normal(z, s)


def _probe(labels: bool) -> Probe:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    return Probe(x, torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(2)) if labels else None)


def _continuous_warnings(model: nn.Module, output, labels: bool) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(output=output, ace_values=None).run(model, _probe(labels))
    return [str(w.message) for w in caught if "continuous distribution" in str(w.message)]


CLASSIFIERS = [("heteroscedastic", lambda out: out["logits"].mean, True, "label"),
               ("evidential", "mean", False, "runner_up"),
               ("evidential", "mean", True, "label"),
               ("hybrid", "logits", False, "runner_up")]


@pytest.mark.parametrize(("kind", "output", "labels", "towards"), CLASSIFIERS)
def test_classifiers_are_not_taken_for_a_continuous_action(kind: str, output, labels: bool, towards: str) -> None:
    assert _continuous_warnings(Net(kind), output, labels) == []
    CounterfactualAudit(towards=towards, output=output).validate(Net(kind), _probe(labels))


def test_a_moment_that_raises_never_crashes_the_audit() -> None:
    assert _continuous_warnings(Net("weird"), lambda out: out.z, False) == []
    CounterfactualAudit(towards="runner_up", output=lambda out: out.z).validate(Net("weird"), _probe(False))


def test_a_forward_that_needs_several_rows_gets_the_audits_own_refusal() -> None:
    with pytest.raises(ValueError, match="treat samples independently"):
        InputEffectAudit(output="logits", ace_values=None).run(Net("batch_stats"), _probe(True))
    CounterfactualAudit(towards="runner_up", output="logits").validate(Net("batch_stats"), _probe(True))


@pytest.mark.parametrize(("kind", "output", "read"), [("normal", "mean", "the Normal's mean"),
                                                      ("beta", "mean", "the Beta's mean"),
                                                      ("gaussian_beside_mean", "mean", "the Normal's mean")])
def test_continuous_actions_are_still_warned_about_and_refused(kind: str, output, read: str) -> None:
    messages = _continuous_warnings(Net(kind), output, False)
    assert len(messages) == 1 and read in messages[0], messages
    with pytest.raises(ValueError, match="a continuous distribution .*integer class labels"):
        CounterfactualAudit(towards="runner_up", output=output).validate(Net(kind), _probe(False))
