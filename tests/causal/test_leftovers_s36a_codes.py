"""Session 36 leftovers of the category codes kept in float columns (``token_ids._code_columns`` and its readers).

A match at an offset of a shared table (rtdl's ``emb(x[:, cats].long() + offsets)``) asked ``16 + log2(D)`` rows
besides ``16 + log2(D)`` bits in each shifted index: on a probe of 8 to 16 rows a table of multi-level codes was read as
floats in silence (the stability measures jittered the codes, the ACE grid interpolated them). The bits alone decide now
(a 0/1 label on few rows carries too few of them: still refused).

Codes read with no module to hook (``F.one_hot(x[:, j].long(), K)``, ``self.table[x[:, j].long()]``, ``F.embedding`` of
a Parameter) were floats to the package: a mean baseline ran as a truncated code in silence and the stability noise
jittered them. A ``TorchFunctionMode`` on the clean pass sees them now, torch's attention modules running outside it
(a mode switches their fused fast path off)."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalGraphAudit, Probe
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements
from lightning_causal.causal.engine.token_ids import (
    FractionalCodeWarning,
    check_token_baselines,
    embedding_readers,
)
from tests.audits.test_review_s35e_code_noise import code_values_run
from tests.causal.test_codes_offsets_s35_shared_table import FTTransformer, census


def test_a_shared_table_of_multi_level_codes_is_read_on_a_probe_of_12_rows():
    torch.manual_seed(0)
    model, x = FTTransformer().eval(), census(12)
    (codes,) = float_code_elements(Forward(model), (x,))  # None at HEAD: 12 < 16 + log2(7) rows
    assert codes.reshape(-1).nonzero().flatten().tolist() == [4, 5, 6]
    values, graph = code_values_run(model, x, lambda: CausalGraphAudit(
        ["block.1"], unit_dim=-1, top_k=4, stability_resamples=1).run(model, Probe(x)), slice(None))
    assert float((values[:, 4:] - values[:, 4:].round()).abs().max()) == 0.0  # the codes ran whole
    assert float((values[:, :4] - values[:, :4].round()).abs().max()) > 0.1  # the numeric columns took their noise


class OneHot(nn.Module):  # age, hours, then a region code read by F.one_hot: no module looks it up
    def __init__(self):
        super().__init__()
        self.lin, self.head = nn.Linear(7, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.lin(torch.cat([x[:, :2] / 50, F.one_hot(x[:, 2].long(), 5).float()], 1))))


class Table(nn.Module):  # the code indexes a Parameter directly
    def __init__(self):
        super().__init__()
        self.table, self.lin, self.head = nn.Parameter(torch.randn(5, 8)), nn.Linear(2, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.lin(x[:, :2] / 50) + self.table[x[:, 2].long()]))


class Functional(Table):  # F.embedding of a weight no nn.Embedding holds, beside an nn.Embedding of a second code
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(3, 8)

    def forward(self, x):
        return self.head(torch.tanh(self.lin(x[:, :2] / 50) + F.embedding(x[:, 2].long(), self.table) + self.emb(x[:, 3].long())))


def coded(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(17, 90, (n,), generator=g), torch.randint(1, 99, (n,), generator=g),
                        torch.randint(0, 5, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)], 1).float()


def test_one_hot_and_a_table_indexed_directly_read_codes():
    torch.manual_seed(0)
    x = coded()
    for model, what in ((OneHot(), "F.one_hot 'num_classes=5'"), (Table(), "Parameter 'table'"),
                        (Functional(), "Parameter 'table'")):
        model.eval()
        with embedding_readers(model, (x,)) as readers:
            model(x)
        codes = [(r.kind, r.name, r.num_embeddings, r.columns) for r in readers]
        assert codes[0] == (*what.replace("'", "").split(" "), 5, (2,)), codes  # none at HEAD
        assert len(codes) == (2 if isinstance(model, Functional) else 1)  # the nn.Embedding's F.embedding once: hooked
        (elements,) = float_code_elements(Forward(model), (x,))  # the stability noise leaves the code whole
        assert elements is not None and bool(elements[0, 2])
        with warnings.catch_warnings(record=True) as caught:  # the mean region 2.03 ran as region 2 in silence
            warnings.simplefilter("always")
            input_effects(model, x, torch.arange(4)[None], baseline=x.mean(0), target=1)
        said = [str(w.message) for w in caught if issubclass(w.category, FractionalCodeWarning)]
        assert any(f"sets column 2 to {float(x[:, 2].mean()):g}" in s and what in s for s in said), said
        with warnings.catch_warnings(record=True) as caught:  # a region past the last: warned of before the pass
            warnings.simplefilter("always")
            check_token_baselines((x,), (torch.tensor([40.0, 40.0, 5.0, 0.0]),), readers)
        assert any("0 <= code < 5" in str(w.message) for w in caught)


class Attention(nn.Module):  # a float sequence through torch's encoder, whose fused fast path runs in eval
    def __init__(self):
        super().__init__()
        self.inp, self.head = nn.Linear(4, 16), nn.Linear(16, 2)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.head(self.enc(self.inp(x)).mean(1))


def test_the_watch_keeps_the_fast_path_and_leaves_nothing_behind():
    torch.manual_seed(0)
    model, x = Attention().eval(), torch.randn(8, 6, 4)
    with torch.no_grad():
        plain = model(x)
        with embedding_readers(model, (x,)):  # a TorchFunctionMode over the encoder took the slow path: 5e-7 off
            watched = model(x)
        assert torch.equal(watched, plain)
        try:
            with embedding_readers(model, (x,)):
                model.enc(torch.randn(8, 6, 5))  # fails inside the encoder, run outside the watch
        except RuntimeError:
            pass
    assert torch.overrides._get_current_function_mode() is None
    assert all("forward" not in m.__dict__ for m in model.modules())


class PerColumn(nn.Module):  # one table, each code column looked up in its own call from its offset
    def __init__(self):
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0, 5]))
        self.emb, self.lin, self.head = nn.Embedding(8, 4), nn.Linear(2, 4), nn.Linear(4, 2)

    def forward(self, x):
        tokens = [self.emb(x[:, 2 + j].long() + self.offsets[j]) for j in range(2)]
        return self.head(torch.tanh(self.lin(x[:, :2] / 50) + sum(tokens)))


def test_a_table_read_a_column_at_a_time_bounds_each_column_by_the_others():
    model, x = PerColumn().eval(), coded(64)
    with embedding_readers(model, (x,)) as readers:
        model(x)
    assert sorted((r.columns, r.shifts) for r in readers) == [((2,), None), ((3,), (5,))]

    def said(baseline):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_token_baselines((x,), (baseline,), readers)
        return [str(w.message) for w in caught if issubclass(w.category, FractionalCodeWarning)]

    # region 5 reads the second column's first row: no warning at HEAD, each call's reader alone knew [0, 8)
    (message,) = said(torch.tensor([40.0, 40.0, 5.0, 0.0]))
    assert "sets column 2 to 5" in message and "0 <= code < 5 (rows 0 to 4 of the 8" in message
    assert "reads another column's row" in message
    assert said(torch.tensor([40.0, 40.0, 4.0, 2.0])) == []  # each column's last level is its own
    (message,) = said(torch.tensor([40.0, 40.0, 0.0, 3.0]))  # past the table's end
    assert "sets column 3 to 3" in message and "0 <= code < 3 (rows 5 to 7" in message
