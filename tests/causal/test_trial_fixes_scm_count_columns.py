"""The SCM's fractional-code warning fired for every column holding whole numbers in the fitted data,
counts included (a count of visits 0..40 is numeric: its counterfactual 12 -> 13.7 is no fault), and
asked "(category codes, flags?)". It now fires only for columns declared `codes=`, says what is
wrong, and points at the user's line; intrinsic_causal_contributions follows the same declaration."""

import warnings

import pytest
import torch

from lightning_causal.causal.scm import AdditiveNoiseSCM
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions

COLUMNS = ["sex", "visits", "job"]
PARENTS = {"visits": ["sex"], "job": ["sex"]}


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    n = 300
    sex = torch.randint(0, 2, (n,), generator=g).double()
    visits = (10 + 7.3 * sex + 4 * torch.randn(n, generator=g, dtype=torch.float64)).round().clamp(0, 40)  # a count
    job = (torch.randint(0, 3, (n,), generator=g) + sex).double()  # a code caused by sex
    return torch.stack([sex, visits, job], 1)


def _said(fn) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fn()
    return [m for m in w if "fractions" in str(m.message)]


def test_a_whole_number_count_is_numeric_and_its_fractional_counterfactual_is_not_warned_of():
    x = _data()
    scm = AdditiveNoiseSCM(COLUMNS, PARENTS).fit(x)
    assert _said(lambda: scm.flip("sex").flip_counterfactual(x)) == []
    assert _said(lambda: scm.counterfactual(x, {"sex": 1.0 - x[:, 0]})) == []
    func = lambda z: z[:, 1] + z[:, 2]  # noqa: E731
    assert _said(lambda: intrinsic_causal_contributions(func, scm, n=32, shapley=False, n_bootstrap=0)) == []


def test_a_declared_code_warns_plainly_at_the_users_line():
    x = _data()
    scm = AdditiveNoiseSCM(COLUMNS, PARENTS, codes=["job"]).fit(x)
    said = _said(lambda: scm.flip("sex").flip_counterfactual(x))
    assert len(said) == 1 and said[0].filename == __file__
    text = str(said[0].message)
    assert "category-code columns ['job']" in text and "visits" not in text and "?" not in text
    said = _said(lambda: scm.counterfactual(x, {"sex": 1.0 - x[:, 0]}))
    assert len(said) == 1 and said[0].filename == __file__ and "['job']" in str(said[0].message)


def test_codes_are_validated():
    with pytest.raises(ValueError, match=r"`codes`.*one of \['sex', 'visits', 'job'\].*'age'"):
        AdditiveNoiseSCM(COLUMNS, PARENTS, codes=["age"])
    for bad in ("job", 3):  # a name alone, not a sequence of names
        with pytest.raises(ValueError, match=r"`codes`"):
            AdditiveNoiseSCM(COLUMNS, PARENTS, codes=bad)
    assert AdditiveNoiseSCM(COLUMNS, PARENTS, codes=None).code_columns == []
    x = _data()
    x[:, 2] += 0.5
    with pytest.raises(ValueError, match=r"\['job'\] hold fractions"):
        AdditiveNoiseSCM(COLUMNS, PARENTS, codes=["job"]).fit(x)
