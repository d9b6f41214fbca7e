"""One-hot blocks of real tabular encodings (newuser9's UCI Adult trial): with pandas' get_dummies of
every categorical column, one_hot_block and one_hot_blocks found none of Adult's blocks (not even the
two sex columns), because columns of *other* features are never 1 with a column by coincidence or
by structure (a country only non-White people hold in the data, relationship=Wife never with
sex=Male, sex=Female never with relationship=Husband), and the check required every column apart
from it to belong to its block. So AttributeFlip("race_White") or AttributeFlip("sex_Male") with
both sex columns kept flipped one column of a block without the documented warning."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.scm.attribute_flip import one_hot_block, one_hot_blocks

# columns: 0 age (numeric) | 1-3 race white/black/asian | 4-6 country us/jamaica/philippines |
#          7-8 sex male/female | 9-11 relationship husband/wife/other
COLUMNS = ["age", "white", "black", "asian", "us", "jamaica", "philippines", "male", "female", "husband", "wife", "other"]
RACE, COUNTRY, SEX, RELATIONSHIP = [1, 2, 3], [4, 5, 6], [7, 8], [9, 10, 11]


def _adult_like(n: int = 64) -> torch.Tensor:
    rows = []
    for i in range(n):
        race = 0 if i % 8 < 5 else 1 if i % 8 < 7 else 2  # white 5/8, black 2/8, asian 1/8
        country = 1 if race == 1 and i % 16 == 5 else 2 if race == 2 and i % 16 == 7 else 0  # only a few non-White abroad
        male = i % 3 != 0
        rel = (0 if male else 1) if i % 2 == 0 else 2  # husbands are male, wives female
        row = [float(i % 7) - 3.0, *[float(race == k) for k in range(3)], *[float(country == k) for k in range(3)],
               float(male), float(not male), *[float(rel == k) for k in range(3)]]
        rows.append(row)
    return torch.tensor(rows)


def test_each_column_finds_its_own_block_beside_other_features_columns_apart_from_it() -> None:
    x = _adult_like()
    # the columns never 1 with 'white' include jamaica and philippines; with 'male', wife; with 'husband', female
    apart = lambda c: [j for j in range(x.shape[1]) if j != c and not bool(((x[:, c] == 1) & (x[:, j] == 1)).any())]  # noqa: E731
    assert {5, 6} <= set(apart(1)) and 10 in apart(7) and 8 in apart(9)
    assert one_hot_block(x, 1) == [2, 3]
    assert one_hot_block(x, 6) == [4, 5]
    assert one_hot_block(x, 7) == [8]
    assert one_hot_block(x, 9) == [10, 11]
    assert one_hot_block(x, 0) == []
    assert one_hot_blocks(x) == sorted([RACE, COUNTRY, SEX, RELATIONSHIP])


def test_no_block_is_patched_together_from_columns_of_several_features() -> None:
    x = _adult_like()
    # without the race and country blocks' other columns, black + asian + jamaica ... cover no row set exactly
    x = x[:, [0, 2, 3, 5, 6, 7, 8]]
    assert one_hot_blocks(x) == [[5, 6]]
    for c in range(5):
        assert one_hot_block(x, c) == []


@pytest.mark.parametrize("column", ["white", "male"])
def test_the_gap_and_the_audit_warn_of_a_flip_of_one_column_of_such_a_block(column: str) -> None:
    x = _adult_like()
    model = nn.Linear(x.shape[1], 2)
    flip = AttributeFlip(column, columns=COLUMNS)
    with pytest.warns(UserWarning, match=f"the flipped column {COLUMNS.index(column)} is one-hot encoded with columns"):
        counterfactual_fairness_gap(model, x, flip)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FairnessAudit(flip, feature_names=COLUMNS).run(model, Probe(x))
    assert sum("is one-hot encoded" in str(w.message) for w in caught) == 1


def test_binary_columns_of_no_block_are_searched_quickly() -> None:
    """A bag of 500 words (under the 512 columns searched) holds no block: each column's search stops
    after a few branches (every audit of InputEffectAudit and SobolAudit looks for blocks)."""
    from lightning_causal.causal.scm import attribute_flip

    # counted, not timed (a timed assertion fails on a loaded machine): the searches run, and each stops at the cap
    # (2000 branches per column took 4.5 s)
    calls = []
    search = attribute_flip._exact_cover

    def counted(*args, **kwargs):
        calls.append(1)
        return search(*args, **kwargs)

    x = (torch.rand(256, 500, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(attribute_flip, "_exact_cover", counted)
        assert one_hot_blocks(x) == [] and one_hot_block(x, 0) == []
    assert attribute_flip._COVER_STEPS <= 100
    assert len(calls) <= 2 * 500  # at most one search per column and call
