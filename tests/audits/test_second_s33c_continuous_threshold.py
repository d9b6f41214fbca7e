"""Review of 3aaaac71 (second look): CounterfactualAudit refuses a continuous distribution's moment (a Gaussian
policy's action means, a heteroscedastic regression's Normal(mean, std)) with the effect audits as the only way out,
where the counterfactual question such a model does have, 'what smallest change brings coordinate k below t', is the
threshold's two classes that the refusal of a one-output regression names (87645978). The refusal names that way,
for a coordinate of the means; taken, it passes the check and its counterfactuals lie below t."""

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal.audits import CounterfactualAudit, Probe


class HeteroscedasticRegression(nn.Module):
    """Normal(mean, std) over 2 targets."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> Normal:
        mean, spread = self.head(x).chunk(2, 1)
        return Normal(mean, nn.functional.softplus(spread) + 0.1)


def _probe() -> Probe:
    g = torch.Generator().manual_seed(1)
    return Probe(torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g))


def test_the_refusal_names_a_coordinates_threshold_and_that_way_runs() -> None:
    model, probe = HeteroscedasticRegression(), _probe()
    with pytest.raises(ValueError, match=r"a continuous distribution .*threshold t .*torch\.stack\(\[m\[:, k\] - t, t - m\[:, k\]\], 1\)"):
        CounterfactualAudit(towards="runner_up", output="mean").validate(model, probe)
    with torch.no_grad():
        t = float(model(probe.inputs).mean[:, 0].median())
    audit = CounterfactualAudit(towards="runner_up", output=lambda out: torch.stack([out.mean[:, 0] - t, t - out.mean[:, 0]], 1))
    audit.validate(model, probe)  # the way named is no continuous moment
    result = audit.run(model, probe)
    assert result.scalars["success_rate"] > 0.5, result.scalars
