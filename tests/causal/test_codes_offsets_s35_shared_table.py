"""Category codes kept in float columns read through one embedding table shared by every categorical column, each from
its own offset (rtdl's FT-Transformer: ``self.emb(x[:, cats].long() + self.offsets)``, ``offsets = cumsum([0, n_0,
...])``): nothing was detected before (the indices equal no column, only a column plus a constant), so the workclass
column's ACE quantiles were interpolated (3.5) and the stability measures noised the codes with no note. Whole-valued
numeric columns beside them (age, hours, a count, a 0/1 flag) stay numbers, and a model that reads integer columns
linearly is unchanged."""

import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline, CausalGraphAudit, Probe
from lightning_causal.causal.effects.input_effects import interventional_expectations
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements
from lightning_causal.causal.engine.token_ids import (
    FractionalCodeWarning,
    _code_columns,
    check_token_baselines,
    embedding_readers,
)
from tests.audits.test_review_s35e_code_noise import code_values_run

LEVELS = (8, 7, 14)  # workclass, marital status, occupation: columns 4, 5, 6 after age, hours, children, a flag


class FTTransformer(nn.Module):  # numeric tokens by a linear embedding each, the codes through one shared table
    def __init__(self, d=8):
        super().__init__()
        self.register_buffer("offsets", torch.tensor((0, *LEVELS[:-1])).cumsum(0))
        self.emb = nn.Embedding(sum(LEVELS), d)
        self.num = nn.Parameter(torch.randn(4, d) * 0.3)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.3)
        self.block = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.head = nn.Linear(d, 2)

    def forward(self, x):
        numbers = (x[:, :4] - torch.tensor([45.0, 40.0, 2.0, 0.3])) / torch.tensor([15.0, 12.0, 2.0, 0.5])
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), numbers[:, :, None] * self.num,
                            self.emb(x[:, 4:].long() + self.offsets)], 1)
        return self.head(self.block(tokens).mean(1))


class LinearNet(nn.Module):  # the same table read linearly: no column is a code
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(7, 12), nn.Tanh())
        self.out = nn.Linear(12, 2)

    def forward(self, x):
        return self.out(self.hidden(x / 50.0))


def census(n=128):
    g = torch.Generator().manual_seed(1)
    numeric = torch.stack([torch.randint(17, 91, (n,), generator=g), torch.randint(1, 100, (n,), generator=g),
                           torch.randint(0, 6, (n,), generator=g), (torch.rand(n, generator=g) < 0.3).long()], 1)
    codes = torch.stack([torch.randint(0, k, (n,), generator=g) for k in LEVELS], 1)
    return torch.cat([numeric, codes], 1).float()


def test_the_shared_table_reads_the_code_columns_at_their_offsets():
    torch.manual_seed(0)
    model, x = FTTransformer().eval(), census()
    with embedding_readers(model, (x,)) as readers:
        model(x)
    assert [(r.columns, r.shifts) for r in readers] == [((4, 5, 6), (0, 8, 15))]
    (codes,) = float_code_elements(Forward(model), (x,))
    assert codes.reshape(-1).nonzero().flatten().tolist() == [4, 5, 6]  # not age, hours, children nor the flag
    # a workclass code past its 8 levels reads the marital status rows in silence: warned of, naming the column's codes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_token_baselines((x,), (torch.tensor([40.0, 40.0, 2.0, 0.0, 9.0, 1.0, 3.0]),), readers)
    (warning,) = [w for w in caught if issubclass(w.category, FractionalCodeWarning)]
    assert "sets column 4 to 9" in str(warning.message) and "0 <= code < 8 (rows 0 to 7 of the 29" in str(warning.message)


def test_ace_grid_of_the_codes_holds_observed_codes_and_age_is_interpolated():
    torch.manual_seed(0)
    model, x = FTTransformer().eval(), census()
    _, grid = interventional_expectations(model, x, torch.arange(7)[None], "quantiles", target=1, num_values=5)
    for j in (4, 5, 6):  # the workclass quantile was 3.5
        assert bool(torch.isin(grid[j], x[:, j].unique()).all()), (j, grid[j])
    linear = torch.quantile(x[:, :4].T, torch.linspace(0.05, 0.95, 5), dim=1).T
    assert torch.allclose(grid[:4], linear) and not bool((grid[0] == grid[0].round()).all())


def test_stability_noise_leaves_the_codes_whole_and_the_note_names_them():
    torch.manual_seed(0)
    model, x = FTTransformer().eval(), census()
    codes, captum = code_values_run(model, x, lambda: CaptumBaseline(("Saliency",), noise_sigma=0.3).run(model, Probe(x)),
                               [4, 5, 6])
    assert float((codes - codes.round()).abs().max()) < 0.05  # the gradient-path check steps a code by ~0.01
    assert any(n.startswith("stability leaves column 4, column 5, column 6 as they are") for n in captum.meta["notes"])
    values, graph = code_values_run(model, x, lambda: CausalGraphAudit(["block.1"], unit_dim=-1, top_k=4, stability_resamples=1).run(
        model, Probe(x)), slice(None))
    assert float((values[:, 4:] - values[:, 4:].round()).abs().max()) == 0.0
    assert float((values[:, :4] - values[:, :4].round()).abs().max()) > 0.1  # the numeric columns took their noise
    assert any("column 4, column 5, column 6" in n for n in graph.meta["notes"])


def test_a_linear_read_of_integer_columns_is_unchanged():
    torch.manual_seed(0)
    model, x = LinearNet().eval(), census()
    assert float_code_elements(Forward(model), (x,)) == (None,)
    _, grid = interventional_expectations(model, x, torch.arange(7)[None], "quantiles", target=1, num_values=5)
    assert torch.allclose(grid, torch.quantile(x.T, torch.linspace(0.05, 0.95, 5), dim=1).T)


def test_a_column_equal_to_the_indices_wins_over_a_shifted_copy_and_two_copies_tell_nothing():
    x = census(64)
    twin = torch.cat([x, x[:, 4:5] + 3.0], 1)  # column 7 is workclass shifted by 3: column 4 equals the indices
    assert _code_columns(twin[:, 4].long(), twin) == ((4,), (0,))
    triplet = torch.cat([x, x[:, 4:5] + 3.0, x[:, 4:5] + 5.0], 1)  # read at offset 1: columns 4, 7 and 8 all fit
    assert _code_columns(triplet[:, 4].long() + 1, triplet) is None
    assert _code_columns(torch.arange(64)[:, None].expand(64, 3) * 0 + torch.tensor([0, 1, 2]), x) is None  # constant


def test_a_few_rows_match_no_column_at_an_offset():
    # two rows: a bucket id that moved by 1 (age 30 -> 40 by decades, at offset 3) fits the 0/1 flag plus a constant
    x = torch.tensor([[30.0, 0.0], [40.0, 1.0]])
    assert _code_columns((x[:, 0] / 10).long(), x) is None
    x = census(7)
    assert _code_columns(x[:, 4:].long() + torch.tensor([0, 8, 15]), x) is None  # 7 rows: too few to tell
    assert _code_columns(x[:, 4:].long(), x) == ((4, 5, 6), (0, 0, 0))  # equal to the columns: matched as before
