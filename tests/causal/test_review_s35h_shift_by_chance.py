"""Review of 89dcbe88/b85bcd69: a match of category codes at an offset of a shared table (indices equal to a column
plus a constant) asked for 8 clean rows, whatever the number of positions searched. A class-conditional model of
binarized digits reading its label through a table with a null class first (``emb(y + 1)``, classifier-free guidance's
layout; ``y`` an integer input, so no view of it) had one of the 784 pixels taken for the label's code column in 22% of
probes of 10 rows (the label's changes equal that pixel's): the pixel lost its stability noise, its ACE grid became
observed codes, and a mean baseline was warned of as a fractional code. A shifted match now needs ``16 + log2(D)`` bits
(D positions) in each shifted index (session 36: bits alone, not rows too); a shared census table is still read. And the lowest column of a shared table owned every
row below its offset: in lucidrains' TabTransformer layout (2 special tokens first, then each column's levels) a
baseline code of -1 read a special token's row in silence, and the warnings said 'codes are -2 <= code < 8'."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements
from lightning_causal.causal.engine.token_ids import (
    FractionalCodeWarning,
    _code_columns,
    check_token_baselines,
    embedding_readers,
)


class Conditional(nn.Module):  # a digit's pixels beside its label, read with a null class at row 0
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(3, 4)
        self.conv = nn.Conv2d(1, 4, 5, stride=4)
        self.head = nn.Linear(4, 1)

    def forward(self, x, y):
        return self.head(self.conv(x).mean((2, 3)) + self.emb(y + 1))


def test_a_label_read_at_an_offset_is_no_pixel_on_a_small_probe():
    torch.manual_seed(0)
    model = Conditional().eval()
    taken = []
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        x = (torch.rand(10, 1, 28, 28, generator=g) < 0.3).float()
        y = torch.randint(0, 2, (10,), generator=g)
        with embedding_readers(model, (x, y)) as readers:
            model(x, y)
        taken += [(seed, r.columns, r.shifts) for r in readers if r.columns is not None]
    assert taken == []  # 5 of 40 probes took a pixel for the label's code column at 89dcbe88
    g = torch.Generator().manual_seed(12)  # pixel 730 was taken for the label plus 1
    x, y = (torch.rand(10, 1, 28, 28, generator=g) < 0.3).float(), torch.randint(0, 2, (10,), generator=g)
    assert float_code_elements(Forward(model), (x, y)) == (None, None)  # the stability noise reaches every pixel


def test_a_shared_table_is_read_on_enough_rows():
    g = torch.Generator().manual_seed(1)
    n = 20  # 16 + log2(6) rows are needed for 6 columns
    x = torch.cat([torch.randint(17, 91, (n, 1), generator=g), (torch.rand(n, 2, generator=g) < 0.5).long(),
                   torch.stack([torch.randint(0, k, (n,), generator=g) for k in (2, 7, 14)], 1)], 1).float()
    offsets = torch.tensor([0, 2, 9])  # sex, marital status, occupation in one table
    assert _code_columns(x[:, 3:].long() + offsets, x) == ((3, 4, 5), (0, 2, 9))
    # 18 rows: the codes at offsets 2 and 9 carry 16 + log2(6) bits and more (7 and 14 levels), read (None before
    # session 36, which asked as many rows); a 0/1 column at an offset carries at most 18 bits on 18 rows: refused
    assert _code_columns(x[:18, 3:].long() + offsets, x[:18]) == ((3, 4, 5), (0, 2, 9))
    assert _code_columns(x[:18, [4, 3, 5]].long() + torch.tensor([0, 7, 9]), x[:18]) is None
    assert _code_columns(x[:18, 3:].long(), x[:18]) == ((3, 4, 5), (0, 0, 0))  # equal to the columns: as before


class TabTransformer(nn.Module):  # lucidrains' layout: special tokens at rows 0 and 1, each column's levels after
    LEVELS = (8, 2, 14)

    def __init__(self):
        super().__init__()
        self.register_buffer("offsets", F.pad(torch.tensor(self.LEVELS), (1, 0), value=2).cumsum(-1)[:-1])
        self.emb = nn.Embedding(sum(self.LEVELS) + 2, 4)
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(torch.cat([self.emb(x[:, 2:].long() + self.offsets).mean(1), x[:, :2] / 50.0], 1))


def test_a_code_below_the_lowest_offset_is_warned_of():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(17, 90, (64, 1), generator=g), torch.randint(0, 6, (64, 1), generator=g),
                   torch.stack([torch.randint(0, k, (64,), generator=g) for k in TabTransformer.LEVELS], 1)], 1).float()
    model = TabTransformer().eval()
    with embedding_readers(model, (x,)) as readers:
        model(x)
    assert [(r.columns, r.shifts) for r in readers] == [((2, 3, 4), (2, 10, 12))]

    def said(baseline):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_token_baselines((x,), (baseline,), readers)
        return [str(w.message) for w in caught if issubclass(w.category, FractionalCodeWarning)]

    (message,) = said(torch.tensor([0.0, 0.0, -1.0, 0.0, 0.0]))  # reads special token 1 (no warning at b85bcd69)
    assert "sets column 2 to -1" in message and "0 <= code < 8 (rows 2 to 9 of the 26" in message
    assert said(torch.tensor([0.0, 0.0, 0.0, 1.0, 13.0])) == []  # every column's first and last levels are its own
    (message,) = said(torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0]))  # sex's third level reads occupation's first row
    assert "0 <= code < 2 (rows 10 to 11" in message


def test_a_rare_label_at_an_offset_is_no_sparse_flag():
    """Final read of session 35: rows enough (64), but a label of one positive changes on one row only, which one of 200
    sparse 0/1 flags (3% set) fits plus 1 by chance (37 of 100 probes before): the shifted index must carry 16 + log2(D)
    bits, not only the probe that many rows."""
    hits = 0
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        x = torch.cat([torch.randint(18, 90, (64, 1), generator=g).float(), (torch.rand(64, 200, generator=g) < 0.03).float()], 1)
        y = torch.zeros(64, dtype=torch.long)
        y[torch.randperm(64, generator=g)[:1]] = 1
        hits += _code_columns((y + 1)[:, None], x) is not None
    assert hits == 0
