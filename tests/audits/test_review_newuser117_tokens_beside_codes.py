"""fafd557f's ``top_codes`` took the place of ``top_tokens`` wherever two columns of an integer input were each looked up by an
embedding of their own, so a model of ids beside tokens (``user(x[:, 0]) + domain(x[:, 1]) + tok(x[:, 2:])``) lost its
tokens' table, and a step-wise sequence model of two embeddings (``src(x[:, t])`` over the source's steps, ``tgt(x[:, t])``
over the target's) was taken for two code columns, the last step of each (review_newuser117): the tokens are now ranked
apart from the codes, over their own columns only, and an embedding that looks up several columns reads no code column."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe

V = 12


class IdsBesideTokens(nn.Module):  # x[:, 0] a user id, x[:, 1] a domain id, x[:, 2] a count read as a number, x[:, 3:] tokens
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.user, self.domain, self.tok = nn.Embedding(V, 4), nn.Embedding(V, 4), nn.Embedding(V, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.user(x[:, 0]) + self.domain(x[:, 1]) + self.tok(x[:, 3:]).mean(1) + 0.1 * x[:, 2:3].float())


class CodesAndShared(nn.Module):  # an embedding per column and one shared by every column: codes only
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cat = nn.ModuleList(nn.Embedding(V, 4) for _ in range(3))
        self.shared, self.fc = nn.Embedding(V, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(sum(e(x[:, j]) for j, e in enumerate(self.cat)) + self.shared(x).mean(1))


def _ids(d: int) -> torch.Tensor:
    return torch.randint(1, V, (40, d), generator=torch.Generator().manual_seed(2))


def test_tokens_beside_codes_ranked_over_their_own_columns():
    x = _ids(8)
    result = InputEffectAudit(baseline=0, ace_values=None, top_k=50).run(IdsBesideTokens().eval(), Probe(x, torch.zeros(40).long()))
    assert result.meta["code_columns"] == {"user": 0, "domain": 1}
    assert {r["column"] for r in result.tables["top_codes"]} == {0, 1}
    effect = result.maps["effect"].abs().double()
    tokens, vals = x[:, 3:], effect[:, 3:]  # the reference: the tokens' columns alone, neither the ids nor the count
    rows = result.tables["top_tokens"]
    assert {r["token"] for r in rows} == set(tokens.unique().tolist())
    for r in rows:
        held = tokens == r["token"]
        assert r["count"] == int(held.sum()) and r["mean_abs_effect"] == pytest.approx(float(vals[held].mean()), abs=1e-9)


def test_codes_with_a_shared_table_have_no_tokens():
    result = InputEffectAudit(baseline=0, ace_values=None).run(CodesAndShared().eval(), Probe(_ids(3), torch.zeros(40).long()))
    assert result.meta["code_columns"] == {"cat.0": 0, "cat.1": 1, "cat.2": 2}
    assert "top_tokens" not in result.tables and result.tables["top_codes"]


class StepSeq2Seq(nn.Module):  # source tokens x[:, :3], target tokens x[:, 3:], each embedding called once per step
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.src, self.tgt, self.cell, self.fc = nn.Embedding(V, 4), nn.Embedding(V, 4), nn.GRUCell(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 4, dtype=torch.float32)
        for t in range(x.shape[1]):
            h = self.cell((self.src if t < 3 else self.tgt)(x[:, t]), h)
        return self.fc(h)


def test_embeddings_called_per_step_read_tokens_not_codes():
    x = _ids(6)
    result = InputEffectAudit(baseline=0, ace_values=None, top_k=50).run(StepSeq2Seq().eval(), Probe(x, torch.zeros(40).long()))
    assert "code_columns" not in result.meta and "top_codes" not in result.tables
    assert {r["token"] for r in result.tables["top_tokens"]} == set(x.unique().tolist())
