"""A model that returns a ``torch.distributions`` object, audited as a new user would (newuser51's trial).

- ``output="log_prob"`` was answered "`log_prob` is a method: call it, `output=lambda out: out.log_prob()`", a
  callable that fails (``log_prob`` takes the value); ``output=lambda out: out.log_prob(y)`` (the probe's labels)
  stopped with torch's bare "Value is not broadcastable with batch_shape+event_shape". Both now name the way that
  works: the labels as a forward argument, whose effects equal a hand ``do()`` (here, in ``audit_model`` too).
- A distribution held in a mapping or a tuple (``{"dist": Normal(...)}``, ``(Normal(...), aux)``) got no example
  (``output="dist"``: "but got Normal"; the tuple: ``output=1``, the auxiliary tensor): the messages name
  ``out['dist'].mean``, which explains the planted mean.
- ``output="mean"`` (or ``"variance"``) of a ``Categorical`` is NaN everywhere in torch: every effect was NaN and
  the audit's scalars too, without a word. It is refused naming ``.logits`` and ``output='probs'`` (the hand do()
  of the softmax); a ``Cauchy``'s mean, naming ``output='loc'``.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects

W_MEAN = torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64)   # mean 2 x0 - x1
W_LOGSD = torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)   # log sd 0.5 x2
X = torch.tensor([[1.0, 2.0, 1.0], [-1.0, 0.5, -2.0], [0.5, -1.0, 2.0], [2.0, 1.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([0.5, -1.0, 3.0, 2.0], dtype=torch.float64)


class Heteroscedastic(nn.Module):
    """``Normal(w_m . x, exp(w_s . x))``; its log-probability of ``y`` where ``y`` is given."""

    def __init__(self, wrap: str = "none", validate: bool | None = None) -> None:
        super().__init__()
        self.wrap, self.validate = wrap, validate
        self.lin = nn.Linear(3, 2, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.stack([W_MEAN, W_LOGSD]))

    def forward(self, x, y=None):
        h = self.lin(x)
        dist = Normal(h[:, 0], h[:, 1].exp(), validate_args=self.validate)
        if y is not None:
            return dist.log_prob(y)
        return {"none": dist, "dict": {"dist": dist}, "tuple": (dist, h)}[self.wrap]


def _log_prob(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log N(y; w_m . x, exp(w_s . x)^2), written out."""
    mean, log_sd = x @ W_MEAN, x @ W_LOGSD
    return -0.5 * ((y - mean) / log_sd.exp()) ** 2 - log_sd - 0.5 * math.log(2 * math.pi)


def _hand_effects(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f(x, y) - f(x | do(x_j := 0), y) for each feature j: [N, 3]."""
    columns = []
    for j in range(x.shape[1]):
        done = x.clone()
        done[:, j] = 0.0
        columns.append(_log_prob(x, y) - _log_prob(done, y))
    return torch.stack(columns, 1)


def test_log_prob_named_as_output_is_told_the_forward_argument_not_a_call_without_its_value():
    with pytest.raises(TypeError, match=r"`log_prob` is a method that takes `value`: .*a value per sample \(the labels\) "
                                        r"cannot come through `output=`.*forward\(self, x, y=None\)") as info:
        input_effects(Heteroscedastic(), X, output="log_prob")
    assert "out.log_prob()" not in str(info.value)


@pytest.mark.parametrize(("validate", "error", "torch_words"), [(True, ValueError, "not broadcastable"),
                                                                 (False, RuntimeError, "must match the size")])
def test_log_prob_of_the_probes_labels_in_the_callable_names_the_forward_argument(validate, error, torch_words):
    # torch's own words differ with the distribution's validation (off after any import of torch._dynamo, which calls
    # Distribution.set_default_validate_args(False): a test run's order decided which one came), the way named does not
    with pytest.raises(error, match=rf"{torch_words}.*compute each row from that row alone.*"
                                    r"`additional_forward_args=\{'y': y\}`"):
        input_effects(Heteroscedastic(validate=validate), X, output=lambda out: out.log_prob(Y), max_batch_size=2)


def test_the_named_way_gives_the_hand_do_of_the_log_probability():
    got = input_effects(Heteroscedastic(), X, additional_forward_args={"y": Y}, max_batch_size=3)
    torch.testing.assert_close(got, _hand_effects(X, Y), rtol=0, atol=1e-12)


def test_audit_model_with_the_labels_as_a_forward_argument_gives_the_hand_do():
    loader = DataLoader(TensorDataset(X, Y), batch_size=2)
    (result,) = audit_model(Heteroscedastic(), [InputEffectAudit(name="logp", ace_values=None)], loader, probe_size=4,
                            unpack_batch=lambda b: (b[0], b[1], {"y": b[1]}))
    torch.testing.assert_close(result.maps["effect"].double(), _hand_effects(X, Y), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("wrap", "read"), [("dict", "out['dist']"), ("tuple", "out[0]")])
def test_a_held_distribution_is_named_and_the_named_read_explains_the_planted_mean(wrap, read):
    with pytest.raises(TypeError, match=rf"e\.g\. `output=lambda out: {re.escape(read)}\.mean` \(the Normal's "
                                        r"predictive mean; its uncertainty: "):
        input_effects(Heteroscedastic(wrap), X)
    got = input_effects(Heteroscedastic(wrap), X, output=eval(f"lambda out: {read}.mean"))  # the read the message names
    torch.testing.assert_close(got, X * W_MEAN, rtol=0, atol=1e-12)  # f - f|do(x_j := 0) = w_j x_j of a linear mean


def test_a_key_that_holds_a_distribution_names_a_tensor_of_it():
    with pytest.raises(TypeError, match=r"but got Normal; explain one tensor of it, e\.g\. "
                                        r"`output=lambda out: out\['dist'\]\.mean`"):
        input_effects(Heteroscedastic("dict"), X, output="dist")


class Classes(nn.Module):
    """Categorical(logits=x @ W.T) of 3 classes, or a Cauchy(x @ w_m, 1) (``kind="cauchy"``)."""

    def __init__(self, kind: str = "categorical") -> None:
        super().__init__()
        self.kind = kind
        self.lin = nn.Linear(3, 3, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [0.0, -1.0, 1.5]]))

    def forward(self, x):
        h = self.lin(x)
        if self.kind == "cauchy":
            return torch.distributions.Cauchy(h[:, 0], torch.ones_like(h[:, 0]))
        return torch.distributions.Categorical(logits=h)


@pytest.mark.parametrize("moment", ["mean", "variance"])
def test_a_categoricals_undefined_moment_is_refused_not_explained_as_nan(moment):
    """torch's Categorical.mean and .variance are NaN everywhere: every effect was NaN, the audit's scalars NaN, nothing said."""
    with pytest.raises(ValueError, match=rf"`output='{moment}'`.* NaN everywhere .*`\.logits` \(no `output=`.*`output='probs'`"):
        input_effects(Classes(), X, output=moment)
    with pytest.raises(ValueError, match=r"NaN everywhere"):
        InputEffectAudit(output=moment, ace_values=None).run(Classes(), Probe(X))


def test_the_named_probs_are_the_hand_do_of_the_softmax():
    got = input_effects(Classes(), X, output="probs", target=1)
    weight = Classes().lin.weight.detach()
    columns = []
    for j in range(3):
        done = X.clone()
        done[:, j] = 0.0
        columns.append((X @ weight.T).softmax(1)[:, 1] - (done @ weight.T).softmax(1)[:, 1])
    torch.testing.assert_close(got, torch.stack(columns, 1), rtol=0, atol=1e-12)


def test_a_cauchys_mean_is_refused_naming_its_location():
    with pytest.raises(ValueError, match=r"Cauchy but its `mean` is NaN everywhere.*`output='loc'`"):
        input_effects(Classes("cauchy"), X, output="mean")
    got = input_effects(Classes("cauchy"), X, output="loc")
    torch.testing.assert_close(got, X * Classes().lin.weight.detach()[0], rtol=0, atol=1e-12)  # w_j x_j
