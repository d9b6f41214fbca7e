"""Review of c10b67f6 and 7d6a6ae1 (newuser45 trial): a category code the model casts to indices (a float column,
``self.region(x[:, 2].long())``) or reads through a view (``race[:, 0]`` of an integer ``race [N, 1]``) set to a code its
embedding lacks was named only after the intervened pass failed in ``nn.Embedding``: on a GPU that pass is a
device-side assert that spoils the process. The clean pass now maps such columns to their embeddings (a float
column whose truncated values are the embedding's indices in every clean row) and the value is refused before any
pass with it runs; a fraction there (a mean baseline) warns that it runs as the code below it."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm, FairnessAudit, InputEffectAudit, Probe
from lightning_causal.causal import (
    FractionalCodeWarning,
    TokenSwap,
    average_causal_effect,
    counterfactual_fairness_gap,
    input_effects,
)
from lightning_causal.causal.engine.token_ids import embedding_readers


class Region(nn.Module):
    """Two numeric columns and a region code 0..3 kept as a float column, cast here; ``looked_up.ids``: every index looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.region = nn.Embedding(4, 2)
        self.head = nn.Linear(4, 2)
        self.looked_up = SimpleNamespace(ids=set())  # not the model's state: audit_mode puts back a set it holds
        self.region.register_forward_pre_hook(lambda _m, a: self.looked_up.ids.update(a[0].reshape(-1).tolist()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x[:, :2], self.region(x[:, 2].long())], 1))


def _data() -> tuple[Region, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(16, 2, generator=g), torch.randint(0, 4, (16, 1), generator=g).float()], 1)
    return Region().eval(), x


def _plus_one(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, :2], x[:, 2:] + 1], 1)


CALLS = {
    "input_effects": lambda m, x: input_effects(m, x, baseline=torch.tensor([0.0, 0.0, 4.0])),
    "InputEffectAudit": lambda m, x: InputEffectAudit(baseline=torch.tensor([0.0, 0.0, 4.0]), ace_values=None).run(m, Probe(x)),
    "average_causal_effect": lambda m, x: average_causal_effect(m, x, values=torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 4.0]])),
    "counterfactual_fairness_gap": lambda m, x: counterfactual_fairness_gap(m, x, _plus_one),
    "FairnessAudit": lambda m, x: FairnessAudit(_plus_one).run(m, Probe(x)),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_float_code_no_embedding_holds_is_warned_of_before_the_pass_and_named_after_it(call: str) -> None:
    # warned before any pass (on a GPU the pass is a device-side assert); the column is matched on the clean rows
    # only, so it is not refused there (a bucketized or clamped column runs: below); the cast pass's failure is named
    model, x = _data()
    with pytest.warns(FractionalCodeWarning, match=r"sets column 2 to 4; that column looks like a category code.*'region'"
                      r".*0 <= code < 4"), pytest.raises(ValueError, match=r"Expected argument `(baseline|values|counterfactual)`"):
        CALLS[call](model, x)


class Bucketized(nn.Module):
    """A count 0..4 bucketized at 0.5, 1.5, ...: the bucket equals the count on every clean row, yet any value runs."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket = nn.Embedding(6, 2)
        self.head = nn.Linear(4, 2)
        self.register_buffer("edges", torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x[:, :2], self.bucket(torch.bucketize(x[:, 2].contiguous(), self.edges))], 1))


class Clamped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.age = nn.Embedding(100, 2)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x[:, :1], self.age(x[:, 1].long().clamp(0, 99))], 1))


def test_a_column_the_model_maps_into_range_is_not_refused() -> None:
    # review_s27j: refused before (636368da): baselines 12 and -1 of a bucketized count, 150 and -5 of a clamped age
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(32, 2, generator=g), torch.randint(0, 5, (32, 1), generator=g).float()], 1)
    model = Bucketized().eval()
    for value in (12.0, -1.0):
        with pytest.warns(FractionalCodeWarning, match="bucketize, clamp"):
            effects = input_effects(model, x, baseline=torch.tensor([0.0, 0.0, value]), target=1)
        set_to = x.clone()
        set_to[:, 2] = value
        with torch.no_grad():  # by hand: the model maps 12 to bucket 5 and -1 to bucket 0
            expected = model(x)[:, 1] - model(set_to)[:, 1]
        torch.testing.assert_close(effects[:, 2], expected)
    ages = torch.cat([torch.randn(32, 1, generator=g), torch.randint(18, 80, (32, 1), generator=g).float()], 1)
    for value in (150.0, -5.0):
        with pytest.warns(FractionalCodeWarning):
            input_effects(Clamped().eval(), ages, baseline=torch.tensor([0.0, value]))


class RaceCode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.race = nn.Embedding(5, 2)
        self.head = nn.Linear(5, 2)
        self.looked_up = SimpleNamespace(ids=set())  # not the model's state: audit_mode puts back a set it holds
        self.race.register_forward_pre_hook(lambda _m, a: self.looked_up.ids.update(a[0].reshape(-1).tolist()))

    def forward(self, race: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.race(race[:, 0]), xc], 1))


def test_integer_codes_read_through_a_column_view_are_refused_before_the_pass() -> None:
    torch.manual_seed(0)
    model = RaceCode().eval()
    race, xc = torch.arange(10).remainder(5).unsqueeze(1), torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"set column 0 \(a category code: Embedding 'race' looks it up\).*0 <= code < 5, but got 5"):
        counterfactual_fairness_gap(model, race, lambda r: r + 1, additional_forward_args=(xc,))
    assert model.looked_up.ids <= {0, 1, 2, 3, 4}


def test_a_fractional_code_baseline_warns_and_runs_as_the_code_below() -> None:
    model, x = _data()
    with pytest.warns(FractionalCodeWarning, match=r"sets column 2 to 2.7; that column looks like a category code.*'region'.*2.7 runs as code 2"):
        effects = input_effects(model, x, baseline=torch.tensor([0.0, 0.0, 2.7]), target=1)
    set_to_2 = x.clone()
    set_to_2[:, 2] = 2.0
    with torch.no_grad():  # the effect of code 2, by hand
        expected = model(x)[:, 1] - model(set_to_2)[:, 1]
    torch.testing.assert_close(effects[:, 2], expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole code, and fractions of the numeric columns, are not warned of
        input_effects(model, x, baseline=torch.tensor([0.5, -1.3, 2.0]))


class Bucketed(nn.Module):
    """An embedding of a continuous column's bucket (indices computed, not a column's values): nothing to map."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket = nn.Embedding(3, 2)
        self.head = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = torch.bucketize(x[:, 0].contiguous(), torch.tensor([-0.5, 0.5]))
        return self.head(torch.cat([self.bucket(b), x[:, 1:]], 1))


def test_an_embedding_of_computed_indices_refuses_no_value() -> None:
    torch.manual_seed(0)
    model, x = Bucketed().eval(), torch.cat([torch.randn(12, 1), torch.randint(0, 3, (12, 1)).float()], 1)
    effects = input_effects(model, x, baseline=torch.tensor([5.0, 7.0]), target=0)
    set_to = torch.tensor([5.0, 7.0]).expand(12, 2)
    with torch.no_grad():
        for j in range(2):
            xj = x.clone()
            xj[:, j] = set_to[:, j]
            torch.testing.assert_close(effects[:, j], model(x)[:, 0] - model(xj)[:, 0])


class OwnBug(nn.Module):
    """No embedding; a per-row scale of 16 rows indexed by the row number: passes of other sizes fail."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.scale = torch.ones(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale[torch.arange(x.shape[0])].unsqueeze(1)


def test_an_index_error_of_the_models_own_is_not_told_as_a_code_set_wrong() -> None:
    model, x = OwnBug().eval(), torch.randn(16, 3)
    with pytest.raises(IndexError, match="index 16 is out of bounds"):
        input_effects(model, x, baseline=0.0)
    with pytest.raises(IndexError, match="index 16 is out of bounds"):
        average_causal_effect(model, x, values=torch.tensor([0.0, 1.0]))


class Wide(nn.Module):
    """99 numeric columns and a code 0..9 in the last, cast here."""

    def __init__(self) -> None:
        super().__init__()
        self.code = nn.Embedding(10, 4)
        self.head = nn.Linear(103, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x[:, :99], self.code(x[:, 99].long())], 1))


def test_the_columns_are_matched_on_the_first_rows_only() -> None:
    # matching a code column on every row of a large probe made [N, D] copies (20000 x 4096: 80 MiB more, 1.2 s)
    from torch.profiler import ProfilerActivity, profile

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(2000, 99, generator=g), torch.randint(0, 10, (2000, 1), generator=g).float()], 1)
    model = Wide().eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof, \
            embedding_readers(model, (x,)) as readers:
        model(x)
    assert [r.columns for r in readers] == [(99,)]
    matching = [e.cpu_memory_usage for e in prof.events() if e.name in ("aten::trunc", "aten::eq", "aten::ne")]
    assert matching and max(matching) <= 256 * 100 * 4  # float32 values of 256 rows at most


def test_the_repair_term_warns_of_a_code_no_embedding_holds_before_its_pass() -> None:
    model, x = _data()
    model.train()
    term = CounterfactualFairnessTerm(_plus_one)
    with pytest.warns(FractionalCodeWarning, match=r"`counterfactual`.*_plus_one.*column 2 to 4;.*'region'.*0 <= code < 4"), \
            pytest.raises(ValueError, match=r"Expected argument `counterfactual`"):
        term.loss(model, x, torch.zeros(16, dtype=torch.long))
    assert model.training  # the readers' pass left the mode


class Words(nn.Module):
    """Token ids [N, T] of a vocabulary of 10, mean-pooled; ``tally.calls``: the forward passes run (in a namespace: a
    number attribute is put back by ``audit_mode`` as the model's state)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 2)
        self.tally = SimpleNamespace(calls=0)
        self.looked_up = SimpleNamespace(ids=set())  # not the model's state: audit_mode puts back a set it holds
        self.emb.register_forward_pre_hook(lambda _m, a: self.looked_up.ids.update(a[0].reshape(-1).tolist()))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.tally.calls += 1
        return self.head(self.emb(ids).mean(1))


def test_the_repair_term_refuses_token_ids_outside_the_vocabulary_before_its_pass() -> None:
    torch.manual_seed(0)
    model = Words()
    ids = torch.tensor([[1, 4, 2], [4, 3, 3], [5, 6, 7]])
    with pytest.raises(ValueError, match=r"TokenSwap.*to give token ids in \[0, 10\).*Embedding 'emb'.*but got 12"):
        CounterfactualFairnessTerm(TokenSwap([(4, 12)])).loss(model, ids, None)
    assert max(model.looked_up.ids) < 10
    term = CounterfactualFairnessTerm(TokenSwap([(4, 8)]))
    model.tally.calls = 0
    assert bool(torch.isfinite(term.loss(model, ids, None)))
    assert model.tally.calls == 2  # the readers' pass of one row, then the pairs' pass
    longer = torch.tensor([[1, 4, 2, 2, 9], [8, 3, 3, 0, 0]])
    term.loss(model, longer, None)  # ids of another length: the embedding that reads them whole is known
    assert model.tally.calls == 3
