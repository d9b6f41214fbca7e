"""Names that read like numbers survive the JSON report (trial newuser19: the results in pandas / a CI gate).

Strict JSON has no NaN or infinity, so the report writes them as the strings ``"nan"``, ``"inf"``, ``"-inf"`` and
``load_report`` turned every such string of the tables, graphs and curves back into a float. A word, feature or
column that is spelt so (a vocabulary's ``nan``, a feature ``inf``) came back as a float NaN or infinity: the
``word`` column of ``top_tokens`` read ``nan``, ``inf``, ``-inf`` where the audit had the words. The report now
lists where it wrote a number (``non_finite``: the path of each such value in the audit's entry) and only those
are read back as floats; the numbers themselves still come back as NaN and infinities.
"""

import json
import math

import torch
from torch import nn

from lightning_causal.audits import AuditResult, InputEffectAudit, Probe
from lightning_causal.reporting.json_report import load_report, write_report


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.out = nn.Embedding(5, 3), nn.Linear(3, 2)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(1))


def test_words_spelt_like_non_finite_numbers_are_read_back_as_words(tmp_path):
    torch.manual_seed(0)
    ids = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1], [1, 1, 2, 2]])
    vocabulary = ["[PAD]", "nan", "inf", "-inf", "ok"]
    r = InputEffectAudit(baseline=0, vocabulary=vocabulary).run(_Bag().eval(), Probe(ids))
    words = [row["word"] for row in r.tables["top_tokens"]]
    assert sorted(words) == ["-inf", "inf", "nan", "ok"]
    back = load_report(write_report(tmp_path, 0, "epoch_end", [r]))["audits"]["input_effect"]
    assert [row["word"] for row in back["tables"]["top_tokens"]] == words


def test_non_finite_numbers_still_come_back_as_floats_and_their_places_are_listed(tmp_path):
    r = AuditResult(
        "demo", scalars={"gap": math.nan, "ok": 1.0}, vectors={"v": torch.tensor([1.0, math.inf])},
        tables={"groups": [{"name": "nan", "tpr": math.nan}, {"name": "b", "tpr": 0.5}]},
        curves={"c": {"x": [0.0, 1.0], "y": [-math.inf, 2.0]}},
    )
    path = write_report(tmp_path, 1, "epoch_end", [r])
    raw = json.loads(path.read_text())["audits"]["demo"]  # what a reader in another language sees
    assert raw["tables"]["groups"][0] == {"name": "nan", "tpr": "nan"}
    assert sorted(raw["non_finite"]) == [["curves", "c", "y", 0], ["scalars", "gap"], ["tables", "groups", 0, "tpr"],
                                         ["vectors", "v", 1]]
    back = load_report(path)["audits"]["demo"]
    assert math.isnan(back["scalars"]["gap"]) and back["scalars"]["ok"] == 1.0
    assert back["vectors"]["v"] == [1.0, math.inf] and back["curves"]["c"]["y"] == [-math.inf, 2.0]
    assert back["tables"]["groups"][0]["name"] == "nan" and math.isnan(back["tables"]["groups"][0]["tpr"])


def test_a_map_with_one_nan_is_searched_once_not_once_per_value(tmp_path, monkeypatch):
    # the first version of the search tested the whole tensor for NaN again at every value below it: a report of
    # two 64x3x32x32 maps holding one NaN did not finish in 10 minutes
    calls = []
    isfinite = torch.Tensor.isfinite
    monkeypatch.setattr(torch.Tensor, "isfinite", lambda self: calls.append(self.numel()) or isfinite(self))
    effect = torch.rand(4, 3, 8, 8)
    effect[1, 2, 3, 4] = math.nan
    path = write_report(tmp_path, 0, "epoch_end", [AuditResult("demo", maps={"effect": effect, "clean": torch.rand(4, 3, 8, 8)})])
    assert len(calls) == 2  # one test per tensor
    assert json.loads(path.read_text())["audits"]["demo"]["non_finite"] == [["maps", "effect", 1, 2, 3, 4]]
    assert math.isnan(load_report(path)["audits"]["demo"]["maps"]["effect"][1][2][3][4])
