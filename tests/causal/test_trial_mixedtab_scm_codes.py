"""A data SCM whose descendants of the sensitive attribute are category codes: the linear SCM's
counterfactual moves a code by a fraction (3 -> 3.146), which a model reading codes runs as
another code. The counterfactual now warns, naming the code columns; numeric columns stay silent."""

import warnings

import torch

from lightning_causal.causal.scm import AdditiveNoiseSCM
from lightning_causal.causal.scm.structural_functions import MLPFunction


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    n = 400
    sex = torch.randint(0, 2, (n,), generator=g).double()
    occupation = (torch.randint(0, 4, (n,), generator=g) + sex).clamp(max=3).double()  # a code caused by sex
    hours = 40 + 3 * sex + torch.randn(n, generator=g, dtype=torch.float64)
    region = torch.randint(0, 5, (n,), generator=g).double()  # a code, no parents
    return torch.stack([sex, occupation, hours, region], 1)


COLUMNS = ["sex", "occupation", "hours", "region"]
CODES = ["occupation", "region"]  # declared category codes (the warning is for declared codes only)


def _messages(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "AdditiveNoiseSCM: the counterfactual" in str(w.message)]


def test_linear_flip_that_moves_a_code_by_a_fraction_warns_naming_it() -> None:
    x = _data()
    scm = AdditiveNoiseSCM(COLUMNS, {"occupation": ["sex"], "hours": ["sex"]}, codes=CODES).fit(x)
    x_cf = scm.flip("sex").flip_counterfactual(x)
    assert not torch.equal(x_cf[:, 1], x_cf[:, 1].round())  # the fault: fractional codes
    messages = _messages(lambda: AdditiveNoiseSCM(COLUMNS, {"occupation": ["sex"], "hours": ["sex"]}, codes=CODES).fit(x).flip("sex")
                         .flip_counterfactual(x))
    assert len(messages) == 1 and "['occupation']" in messages[0] and "no parents" in messages[0]
    messages = _messages(lambda: scm.counterfactual(x, {"sex": 1.0 - x[:, 0]}))  # the abduction path names it too
    assert len(messages) == 1 and "['occupation']" in messages[0]


def test_nonlinear_scm_warns_and_a_code_without_parents_stays_silent() -> None:
    x = _data()
    torch.manual_seed(0)
    mlp = AdditiveNoiseSCM(COLUMNS, {"occupation": ["sex"], "hours": ["sex"]}, regressor={"occupation": MLPFunction},
                           codes=CODES).fit(x)
    assert len(_messages(lambda: mlp.flip("sex").flip_counterfactual(x))) == 1
    roots = AdditiveNoiseSCM(COLUMNS, {"hours": ["sex"]}, codes=CODES).fit(x)  # occupation declared without parents: keeps its code
    assert _messages(lambda: roots.flip("sex").flip_counterfactual(x)) == []
    x_cf = roots.flip("sex").flip_counterfactual(x)
    assert torch.equal(x_cf[:, [1, 3]], x[:, [1, 3]])
    b = float(roots.flip_effects("sex")[2])  # hours = a + b sex + u: moves by b per unit of sex
    assert torch.allclose(x_cf[:, 2] - x[:, 2], (x_cf[:, 0] - x[:, 0]) * b, atol=1e-12)
