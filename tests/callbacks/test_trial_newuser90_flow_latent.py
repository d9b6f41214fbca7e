"""A normalizing flow whose ``forward(x)`` returns ``(z, log_det)`` was refused without ``output=``, naming ``output=0``;
with ``output=0`` every audit ran in silence on ``z``'s coordinates as class scores: ``InputEffectAudit`` explained each
sample's largest latent coordinate, ``SobolAudit`` a softmax of ``z``, ``CounterfactualAudit`` found every sample
'misclassified' (argmax of ``z`` against the labels 0/1) and made another coordinate the largest. A return value whose
element has the input's shape beside one number per sample is now warned of at set-up where ``z`` is explained as
classes (``target=None``, or an audit reading decisions), and the refusal of the tuple names the log-likelihood's
``output=``, which these tests check against the closed-form log-density of an affine flow, set, rerun, difference.
A hybrid on 2 features of 2 classes, whose logits have the input's shape beside its features' log-likelihood, is not
warned of where its head decides the probe's labels."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CounterfactualAudit, InputEffectAudit, SobolAudit, audit_model

D = 4


class AffineFlow(nn.Module):
    """z = A x + b, log|det dz/dx| per sample: a Glow step without coupling (ActNorm then an invertible mixing)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.linalg.qr(torch.randn(D, D, generator=g))[0] * torch.tensor([2.0, 1.0, 0.5, 1.5]))
        self.bias = nn.Parameter(torch.randn(D, generator=g))

    def forward(self, x):
        return x @ self.weight.T + self.bias, torch.linalg.slogdet(self.weight)[1].expand(x.shape[0])

    def inverse(self, z):
        return (z - self.bias) @ torch.linalg.inv(self.weight).T


class Hybrid(nn.Module):
    """A classifier head beside a per-sample log-likelihood: (logits [N, 2], log p(h) [N]), no latent of x's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(D, 2)

    def forward(self, x):
        return self.head(x), -0.5 * (x**2).sum(1)


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, D, generator=g), torch.arange(32) % 2


def _warned(model, audit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(model, [audit], _data(), probe_size=32)
    return [str(w.message) for w in caught if "normalizing flow" in str(w.message)]


@pytest.mark.parametrize("audit", [InputEffectAudit(output=0, ace_values=None), CounterfactualAudit(output=0),
                                   SobolAudit(output=0, n=64, n_bootstrap=4),
                                   InputEffectAudit(output=lambda out: out[0].flatten(1), ace_values=None)],
                         ids=["effects", "counterfactuals", "sobol", "flattened"])
def test_the_latent_of_a_flow_explained_as_classes_is_warned_of(audit):
    (message,) = _warned(AffineFlow(), audit)
    assert f"Audit {audit.name!r} explains out[0] [32, 4]" in message and "out[1] [32]" in message
    assert "Normal(0.0, 1.0).log_prob(out[0]).flatten(1).sum(1) + out[1].flatten()" in message and "target=k" in message


@pytest.mark.parametrize("case", ["coordinate", "likelihood", "hybrid"])
def test_a_chosen_coordinate_the_likelihood_and_a_hybrid_head_are_not(case):
    if case == "coordinate":
        assert _warned(AffineFlow(), InputEffectAudit(output=0, target=2, ace_values=None)) == []
    elif case == "likelihood":
        lik = lambda out: torch.distributions.Normal(0.0, 1.0).log_prob(out[0]).flatten(1).sum(1) + out[1]  # noqa: E731
        assert _warned(AffineFlow(), InputEffectAudit(output=lik, ace_values=None)) == []
    else:
        assert _warned(Hybrid(), InputEffectAudit(output=0, ace_values=None)) == []


class TwoFeatureHybrid(nn.Module):
    """(logits [N, 2], log p(x) [N]) on 2 features of 2 classes: logits of the input's shape, a classifier's."""

    def forward(self, x):
        return torch.stack([-x[:, 0], x[:, 0]], 1), -0.5 * (x**2).sum(1)


def test_a_hybrid_whose_logits_have_the_input_s_shape_is_not_warned_of_where_they_decide_the_labels():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 2, generator=g)
    labels = (x[:, 0] > 0).long()
    for flip, expected in ((labels, 0), (torch.arange(40) % 2, 1)):  # the head decides the labels, or chance does
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit_model(TwoFeatureHybrid(), [InputEffectAudit(output=0, ace_values=None)], (x, flip), probe_size=40)
        assert len([w for w in caught if "normalizing flow" in str(w.message)]) == expected


def test_the_refusal_of_the_tuple_names_the_likelihood_which_matches_the_closed_form():
    with pytest.raises(MisconfigurationException, match=r"as a normalizing flow's `\(z, log_det\)`") as err:
        audit_model(AffineFlow(), [InputEffectAudit(ace_values=None)], _data(), probe_size=32)
    assert "Hybrid" not in str(err.value)
    code = re.search(r"`output=(lambda out: torch[^`]*)` \(log p", str(err.value)).group(1)
    flow = AffineFlow().double()
    x = _data()[0].double()
    (result,) = audit_model(flow, [InputEffectAudit(output=eval(code), ace_values=None)], (x,), probe_size=32)
    with torch.no_grad():  # log p(x) = log N(A x + b; 0, I) + log|det A|, set x_j := 0, rerun, difference

        def log_p(v):
            z = v @ flow.weight.T + flow.bias
            return -0.5 * (z**2).sum(1) - 0.5 * D * math.log(2 * math.pi) + torch.linalg.slogdet(flow.weight)[1]

        hand = torch.stack([log_p(x) - log_p(x.index_fill(1, torch.tensor([j]), 0.0)) for j in range(D)], 1)
    torch.testing.assert_close(torch.as_tensor(result.maps["effect"]).double(), hand, rtol=0, atol=1e-9)


class LogLikelihood(nn.Module):
    """log p(x) [N] of the affine flow: one output, which FairnessAudit reads as a binary logit."""

    def __init__(self) -> None:
        super().__init__()
        self.flow = AffineFlow()

    def forward(self, x):
        z, log_det = self.flow(x)
        return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + log_det - 8.0  # as low as a flow of 8 features


@pytest.mark.parametrize("case", ["likelihood", "likelihood compare=output", "binary logit"])
def test_fairness_of_a_log_likelihood_read_as_a_logit_is_warned_of(case):
    """FairnessAudit on a flow's log p(x) with 0/1 labels gave cf_gap 0.0, positive rates 0.00 and accuracy 0.50 in
    silence: sigmoid(log p(x)) is 0 for every sample."""
    from lightning_causal import FairnessAudit
    from lightning_causal.causal import AttributeFlip

    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, D, generator=g)
    x[:, 3] = (x[:, 3] > 0).float()
    model = nn.Linear(D, 1) if case == "binary logit" else LogLikelihood()
    options = {"compare": "output"} if case.endswith("output") else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(model, [FairnessAudit(AttributeFlip(3), sensitive=3, **options)], (x, torch.arange(32) % 2),
                    probe_size=32)
    said = [str(w.message) for w in caught if "read as a" in str(w.message) and "binary logit" in str(w.message)]
    if case == "likelihood":
        (message,) = said
        assert "below -4.6 on every one of the probe's 32 samples" in message and "compare='output'" in message
    else:
        assert said == []
