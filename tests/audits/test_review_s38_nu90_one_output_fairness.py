"""Review of 39d19b5e..5a2ac65b (normalizing flows): docs/your_model.md has a flow's audits take its log-likelihood
through ``output=`` (one number per sample) and ``FairnessAudit(compare="output")`` compare it, but FairnessAudit's
check of a continuous distribution's read (``task_warnings.continuous_distribution_read``) took
``max(2, *picked.shape[1:])`` of an output ``[N]``, ``max(2)``: every such audit with class labels failed its dry run
with ``TypeError: 'int' object is not iterable``. One output with class labels now reads as a binary classifier's
logit there, as one ``[N, 1]`` does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.audits.task_warnings import continuous_distribution_read
from lightning_causal.causal.scm import AttributeFlip


class Flow(nn.Module):
    """(z, log_det) of an affine map: the log-likelihood of x under a standard normal base is one number per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([0.5, 1.0, 2.0, 1.0]))

    def forward(self, x):
        return x * self.scale, self.scale.abs().log().sum().expand(len(x))


def log_p(out):
    return torch.distributions.Normal(0.0, 1.0).log_prob(out[0]).sum(1) + out[1]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    x[:, 3] = (torch.rand(64, generator=g) > 0.5).float()
    return x, (x[:, 0] > 0).long()


@pytest.mark.parametrize("width", [(), (1,)])
def test_one_output_with_class_labels_reads_as_one_logit(width) -> None:
    x, y = _data()
    probe = Probe(x, y)
    assert continuous_distribution_read(Flow(), probe, lambda out: log_p(out).reshape(-1, *width)) is None


def test_fairness_of_a_flow_s_log_likelihood_runs_and_compares_nats() -> None:
    x, y = _data()
    flow = Flow()
    result = audit_model(flow, [FairnessAudit(AttributeFlip(3), sensitive=3, output=log_p, compare="output")], (x, y),
                         probe_size=64)
    result = result["fairness"] if isinstance(result, dict) else result[0]
    # flipping x3 between 0 and 1 moves log p(x) by -(1 - 0) / 2 (its base log-density, scale 1): 0.5 nats for every sample
    assert result.scalars["cf_gap"] == pytest.approx(0.5, abs=1e-6)


def _flow_warnings(run) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "normalizing flow" in str(w.message) or "binary logit" in str(w.message)]


def test_a_direct_run_warns_of_a_flow_s_latent_and_log_likelihood_read_as_classes() -> None:
    """The flow warnings of 39d19b5e/e3b531e0 ran at the callback's and audit_model's set-up only: a direct
    ``audit.run(model, probe)`` explained z's largest coordinate, or compared sigmoid(log p(x)), 0 everywhere, in
    silence. They now run in ``judged_run``'s pass after a direct run of a probe with class labels, once."""
    from lightning_causal import InputEffectAudit

    x, y = _data()
    flow = Flow()
    latent = _flow_warnings(lambda: InputEffectAudit(output=0).run(flow, Probe(x, y)))
    assert len(latent) == 1 and "out[0] [64, 4]" in latent[0] and "target=k" in latent[0]
    fairness = FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda out: log_p(out) - 10.0)
    (saturated,) = _flow_warnings(lambda: fairness.run(flow, Probe(x, y)))
    assert "below -4.6 on every one of the probe's 64 samples" in saturated and "compare='output'" in saturated
    # what the warnings leave alone: a chosen coordinate, the likelihood compared in its own units, audit_model's run
    assert _flow_warnings(lambda: InputEffectAudit(output=0, target=1).run(flow, Probe(x, y))) == []
    compared = FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda out: log_p(out) - 10.0, compare="output")
    assert _flow_warnings(lambda: compared.run(flow, Probe(x, y))) == []
    assert len(_flow_warnings(lambda: audit_model(flow, [InputEffectAudit(output=0)], (x, y), probe_size=64))) == 1


class _Regressor(nn.Module):
    """A model that says it regresses (a held nn.MSELoss), its one output about -10 on every sample."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.loss = nn.Linear(4, 1), nn.MSELoss()

    def forward(self, x):
        return self.lin(x).squeeze(1) - 10.0


@pytest.mark.parametrize("compare", [None, "probability"])
def test_a_regressor_s_outputs_compared_by_default_are_not_warned_of_as_a_logit(compare) -> None:
    """FairnessAudit left to choose compares a regressor's outputs (443ea5d7), but e3b531e0's warning still said it
    compared sigmoid probabilities and named compare='output', which it already used."""
    x, y = _data()
    torch.manual_seed(0)
    audit = FairnessAudit(AttributeFlip(3), sensitive=3, compare=compare)
    said = _flow_warnings(lambda: audit_model(_Regressor(), [audit], (x, y), probe_size=64))
    assert len([m for m in said if "binary logit" in m]) == (compare == "probability")
