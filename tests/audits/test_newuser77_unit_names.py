"""``UnitImportanceAudit(unit_names=)``: the feature tokens of a tabular transformer (``unit_dim=1`` of its token
sequence, ``[CLS]`` first) were ranked as ``unit 9``, ``unit 11``: a user had to count columns to read them. Named now in
the table, the meta, the text card and the bar figure; a wrong count or an unknown layer is refused, naming them."""

import pytest
import torch
from torch import nn

from lightning_causal import Probe, UnitImportanceAudit
from lightning_causal.reporting.summary import markdown_summary
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

NAMES = ["[CLS]", "age", "hours", "sex"]


class TinyFT(nn.Module):  # age, hours, then sex as a float code: a token each, and [CLS]
    def __init__(self):
        super().__init__()
        self.num = nn.Parameter(torch.randn(2, 4))
        self.sex = nn.Embedding(2, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, 4))
        self.tokens = nn.Identity()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        t = torch.cat([self.cls.expand(len(x), -1, -1), x[:, :2, None] * self.num, self.sex(x[:, 2].long())[:, None]], 1)
        return self.head(torch.tanh(self.tokens(t)).mean(1))


def probe():
    g = torch.Generator().manual_seed(0)
    return Probe(torch.cat([torch.randn(32, 2, generator=g), torch.randint(0, 2, (32, 1), generator=g).float()], 1))


def test_token_names_reach_the_table_the_card_and_the_bars():
    torch.manual_seed(0)
    audit = UnitImportanceAudit(["tokens"], top_k=4, unit_dim=1, unit_names={"tokens": NAMES})
    result = audit.run(TinyFT().eval(), probe())
    rows = result.tables["top_units/tokens"]
    assert [r["name"] for r in rows] == [NAMES[r["unit"]] for r in rows]
    assert result.meta["unit_names/tokens"] == NAMES
    assert rows[0]["name"] in markdown_summary(0, [result])
    fig = TensorBoardRenderer().figures([result])["causal/unit_importance/bars/importance/tokens"]
    assert {t.get_text() for t in fig.axes[0].get_xticklabels()} == set(NAMES)


def test_unit_names_are_checked():
    with pytest.raises(ValueError, match=r"unit_names.*layers of the audit, \['tokens'\].*'head'"):
        UnitImportanceAudit(["tokens"], unit_dim=1, unit_names={"head": NAMES})
    with pytest.raises(TypeError, match="unit_names"):
        UnitImportanceAudit(["tokens"], unit_dim=1, unit_names=NAMES)
    with pytest.raises(ValueError, match=r"one name per unit of layer 'tokens', 4 .* but got 3"):
        UnitImportanceAudit(["tokens"], unit_dim=1, unit_names={"tokens": NAMES[:3]}).run(TinyFT().eval(), probe())
