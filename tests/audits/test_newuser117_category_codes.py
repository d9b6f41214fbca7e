"""A tabular model's integer category codes ``x_cat [N, D]``, each column looked up by an embedding of its own
(an FT-Transformer's ``self.cat[j](x_cat[:, j])``), were taken for token ids of one vocabulary (newuser117):
InputEffectAudit's ``top_tokens`` pooled code 1 of one column with code 1 of another; CaptumBaseline's stability
drew codes from every column (past a column's levels: an IndexError after the first epoch, a device-side assert on a
GPU; of columns of as many levels, another column's codes in silence), and its refusal of gradient methods said the
model held no embedding that reads the input; the effect maps drew the codes as a token strip; CounterfactualAudit refused them with the advice for bags of items."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import infer_kind

LEVELS = (3, 5)


class Tabular(nn.Module):  # the explained codes first, the numeric columns following their rows
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cat = nn.ModuleList(nn.Embedding(n, 4) for n in LEVELS)
        self.head = nn.Sequential(nn.Linear(2 + 8, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x_cat, x_num):
        return self.head(torch.cat([x_num, *(e(x_cat[:, j]) for j, e in enumerate(self.cat))], 1))


def _probe(n: int = 64) -> Probe:
    g = torch.Generator().manual_seed(1)
    codes = torch.stack([torch.randint(0, k, (n,), generator=g) for k in LEVELS], 1)
    return Probe(codes, torch.randint(0, 2, (n,), generator=g), additional_forward_args=(torch.randn(n, 2, generator=g),))


def test_input_effects_rank_each_columns_codes_apart():
    model, probe = Tabular().eval(), _probe()
    audit = InputEffectAudit(baseline=0, feature_names=["race", "workclass"], ace_values=None)
    result = audit.run(model, probe)
    assert "top_tokens" not in result.tables
    rows = result.tables["top_codes"]
    x, effect = probe.first, result.maps["effect"].abs().double()
    pairs = {(j, c) for j in range(2) for c in x[:, j].unique().tolist()}
    assert len(rows) == min(len(pairs), audit.top_k) and {(r["column"], r["code"]) for r in rows} <= pairs
    for r in rows:  # the reference: mean |effect| of column j over the rows holding code c there
        held = x[:, r["column"]] == r["code"]
        assert r["name"] == f"{['race', 'workclass'][r['column']]}={r['code']}" and r["count"] == int(held.sum())
        assert r["mean_abs_effect"] == pytest.approx(float(effect[held, r["column"]].mean()), abs=1e-9)
    means = [r["mean_abs_effect"] for r in rows]
    assert means == sorted(means, reverse=True)


def test_codes_drawn_as_a_tables_columns_without_names():
    """A token strip left out a row's code 0 (taken for padding) and named no column; without `feature_names` the codes
    now take the table's bars, as with them."""
    model, probe = Tabular().eval(), _probe()
    result = InputEffectAudit(baseline=0, ace_values=None).run(model, probe)
    assert result.meta["code_columns"] == {"cat.0": 0, "cat.1": 1}
    assert infer_kind(probe.first, result.meta) == "tabular"
    assert [r["name"].split("=")[0] for r in result.tables["top_codes"]][:1] in (["column 0"], ["column 1"])


def test_captum_stability_pool_refused_at_set_up_and_position_runs():
    model, probe = Tabular().eval(), _probe()
    with pytest.raises(ValueError, match=r"token_pool='position'.*'cat.0' reads column 0, 'cat.1' column 1"):
        CaptumBaseline(methods=("FeatureAblation",), baseline=0).validate(model, probe)
    with pytest.raises(ValueError, match=r"category codes, each column looked up by an embedding of its own \('cat.0'"):
        CaptumBaseline(baseline=0).validate(model, probe)  # gradient methods: perturbation methods named, not "no embedding"
    audit = CaptumBaseline(methods=("FeatureAblation",), baseline=0, settings=CompareSettings(token_pool="position"))
    audit.validate(model, probe)
    result = audit.run(model, probe)
    assert 0.0 <= result.scalars["compare/FeatureAblation/stability"] <= 1.0
    assert result.meta["code_columns"] == {"cat.0": 0, "cat.1": 1} and infer_kind(probe.first, result.meta) == "tabular"


def test_token_ids_of_one_embedding_keep_the_probe_pool():
    model = nn.Sequential(nn.Embedding(6, 3), nn.Flatten(), nn.Linear(12, 2)).eval()
    ids = torch.randint(0, 6, (16, 4), generator=torch.Generator().manual_seed(0))
    probe = Probe(ids, torch.randint(0, 2, (16,)))
    CaptumBaseline(methods=("FeatureAblation",), baseline=0).validate(model, probe)
    assert "top_codes" not in InputEffectAudit(baseline=0).run(model, probe).tables


def test_counterfactual_refusal_of_codes_names_the_float_input_and_one_hot():
    from lightning_causal.audits import CounterfactualAudit

    with pytest.raises(ValueError, match=r"category codes, each column looked up by an embedding of its own \('cat.0' reads "
                                         r"column 0, 'cat.1' column 1\).*explain.*categorical="):
        CounterfactualAudit().validate(Tabular().eval(), _probe())
