"""The refusal of a moment torch leaves undefined (a Cauchy's mean, a Categorical's mean, a StudentT's mean where
df <= 1) ran where `output=` named it ("mean") but not where a callable read it: `output=lambda d: d.mean` of a
Cauchy, `lambda out: out['dist'].mean` of a Categorical gave effects of NaN silently. A callable's value now reaches
the same check (output_selection._check_defined), named as the callable, with the callables that explain the
distribution; a non-finite value where no moment is undefined (a log_prob of -inf beyond the support) is the model's,
as before."""

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Cauchy, Normal, StudentT, Uniform

from lightning_causal.causal import input_effects

X = torch.tensor([[1.0, 0.5, -1.0], [-0.5, 2.0, 0.0], [0.3, -0.2, 1.0], [-1.0, 0.0, 0.5]])


class _Head(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.w = nn.Parameter(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]))

    def forward(self, x):
        h = x @ self.w.t()
        if self.kind == "cauchy":
            return Cauchy(h[:, :1], h[:, 1:].exp())
        if self.kind == "studentt":  # df 0.5 (no mean) for the samples of a positive first feature: rows 0 and 2
            return StudentT(torch.where(x[:, :1] > 0, 0.5, 3.0), h[:, :1], h[:, 1:].exp())
        if self.kind == "categorical":
            return {"dist": Categorical(logits=h), "h": h}
        if self.kind == "uniform":
            return Uniform(h[:, :1] - 10, h[:, :1] + 10, validate_args=False)
        return Normal(h[:, :1], h[:, 1:].exp())


def test_a_callable_reading_a_cauchys_mean_is_refused_as_the_name_is():
    with pytest.raises(ValueError, match=r"^Expected `output=` \(a callable\) to return a defined tensor of the Cauchy the "
                                         r"model returns but it returned NaN everywhere, where the Cauchy's `mean` is undefined .*explain a "
                                         r"tensor it is built from \(`output=lambda out: out.loc`, `output=lambda out: "
                                         r"out.scale`\), or `output=lambda out: out.icdf\(torch.tensor\(0.5\)\)`"):
        input_effects(_Head("cauchy"), X, output=lambda d: d.mean)
    with pytest.raises(ValueError, match=r"^Expected argument `output='mean'`.*Cauchy.*NaN everywhere"):
        input_effects(_Head("cauchy"), X, output="mean")


def test_a_callable_reading_a_held_categoricals_mean_names_its_log_probabilities():
    with pytest.raises(ValueError, match=r"of the Categorical at out\['dist'\] but it returned NaN everywhere, where "
                                         r"the Categorical's `mean` is undefined.*`output=lambda out: out\['dist'\].logits`, or "
                                         r"`output=lambda out: out\['dist'\].probs`"):
        input_effects(_Head("categorical"), X, output=lambda out: out["dist"].mean)


def test_a_callable_reading_a_studentts_mean_names_the_rows_where_df_is_at_most_1():
    with pytest.raises(ValueError, match=r"returned NaN in rows \[0, 2\] of the 4 of a model call, where the StudentT's `mean` is undefined"):
        input_effects(_Head("studentt"), X, output=lambda d: d.mean, max_batch_size=4)


def test_defined_values_of_callables_are_explained_as_before():
    w = _Head("normal").w.detach()
    mean = input_effects(_Head("normal"), X, output=lambda d: d.mean)  # δ_g = w_0g x_g, the mean linear in x
    assert torch.allclose(mean, X * w[0], atol=1e-6)
    med = input_effects(_Head("cauchy"), X, output=lambda d: d.icdf(torch.tensor(0.5)))  # the median is loc
    assert torch.allclose(med, X * w[0], atol=1e-6)
    logits = input_effects(_Head("categorical"), X, output=lambda out: out["dist"].logits)
    assert torch.allclose(logits, input_effects(_Head("categorical"), X, output=lambda out: out["h"].log_softmax(1)), atol=1e-6)


def test_nan_of_the_callables_own_beside_a_categorical_is_not_named_its_mean():
    own = input_effects(_Head("categorical"), X, output=lambda out: out["dist"].logits.log())  # log of log-probabilities
    assert not own.isfinite().all()  # the callable's NaN ([N, 2], not the mean's [N]): reported downstream, as before


def test_a_log_prob_of_minus_inf_beyond_the_support_is_the_models_not_refused():
    effects = input_effects(_Head("uniform"), X, output=lambda d: d.log_prob(torch.full_like(d.low, 50.0)))
    assert not torch.isfinite(effects).any()  # every row -inf: its effects NaN, reported downstream, not refused here
