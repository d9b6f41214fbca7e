"""Review of 91402b68 (code reads with no module to hook, watched by a ``TorchFunctionMode`` on the clean pass).

The watch took any integer index of the pass for a code read, the row numbers too: the engine's own gather of a
per-sample forward argument by ``rows=torch.arange(N)``, a model's ``h[torch.arange(B), last]`` or learned positions
``pos[torch.arange(T)]`` with ``T == N``. A probe column of consecutive whole numbers in row order (an id column kept,
``PassengerId``; a day number of a series) then read as a category code of that tensor: the stability noise left it
whole, a mean baseline was warned of as a code. And a watch inside another (nothing nests them today) switched the
attention modules' fast path off again."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements
from lightning_causal.causal.engine.token_ids import FractionalCodeWarning, embedding_readers
from tests.causal.test_leftovers_s36a_codes import Attention


def with_ids(n=64):  # six Gaussian features, the first replaced by an id column 1..n in the probe's row order
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(0))
    x[:, 0] = torch.arange(1, n + 1).float()
    return x


class Weighted(nn.Module):  # a per-sample forward argument, which the engine gathers by rows
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x, w):
        return self.net(x) * w[:, None]


class LastStep(nn.Module):  # a sequence model read at its last step, h[torch.arange(B), last]
    def __init__(self):
        super().__init__()
        self.gru, self.head = nn.GRU(6, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x):
        h, _ = self.gru(x[:, None].expand(-1, 3, -1))
        return self.head(h[torch.arange(x.shape[0]), torch.full((x.shape[0],), 2)])


class Positions(nn.Module):  # learned positions indexed directly, as many as the probe's rows, beside a one-hot code
    def __init__(self, t=64):
        super().__init__()
        self.pos, self.lin, self.head = nn.Parameter(torch.randn(t, 8)), nn.Linear(9, 8), nn.Linear(8, 3)

    def forward(self, x):
        pos = self.pos[torch.arange(self.pos.shape[0])].mean(0)
        return self.head(torch.tanh(self.lin(torch.cat([x[:, 1:5], F.one_hot(x[:, 5].long(), 5).float()], 1)) + pos))


def test_row_numbers_are_no_code_read():
    torch.manual_seed(0)
    x = with_ids()
    w = torch.rand(64) + 0.5
    (codes,) = float_code_elements(Forward(Weighted().eval(), additional_forward_args=(w,), num_samples=64), (x,))
    assert codes is None or not bool(codes.any())  # the engine's w[rows] matched the id column
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(LastStep().eval(), x, torch.arange(6)[None], baseline=x.mean(0), target=0)
    assert not [w for w in caught if issubclass(w.category, FractionalCodeWarning)]  # 'a code that tensor ... looks up'
    x[:, 5] = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(1)).float()
    model = Positions().eval()
    with torch.no_grad(), embedding_readers(model, (x,)) as readers:
        model(x)
    assert [(r.kind, r.columns) for r in readers] == [("F.one_hot", (5,))]  # the code still found, the positions not


def test_a_watch_inside_another_keeps_the_fast_path():
    torch.manual_seed(0)
    model, x = Attention().eval(), torch.randn(8, 6, 4)
    with torch.no_grad():
        plain = model(x)
        with embedding_readers(model, (x,)), embedding_readers(model, (x,)):
            watched = model(x)
    assert torch.equal(watched, plain)
    assert torch.overrides._get_current_function_mode() is None
    assert all("forward" not in m.__dict__ for m in model.modules())


class PerSample(nn.Module):  # each sample run alone by torch.func.vmap: a float sequence [T, 2] whose 2nd channel is a code
    def __init__(self, embedding=False):
        super().__init__()
        self.table = nn.Embedding(5, 4) if embedding else nn.Parameter(torch.randn(5, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        def one(seq):
            codes = seq[:, 1].long()
            return self.head(self.table(codes) if isinstance(self.table, nn.Embedding) else self.table[codes]).mean(0)
        return torch.func.vmap(one)(x)


def test_lookups_under_vmap_leave_the_pass_alone():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    x = torch.stack([torch.randn(8, 8, generator=g), torch.randint(0, 5, (8, 8), generator=g).float()], -1)  # T == N
    for model in (PerSample().eval(), PerSample(embedding=True).eval()):
        plain = model(x)
        with embedding_readers(model, (x,)) as readers:  # a batched index has no storage, and refuses bool(): it raised
            watched = model(x)
        assert torch.equal(watched, plain) and readers == []
        effects = input_effects(model, x, None, target=0)  # each element its own group, set to 0
        cut = x.clone()
        cut[:, 3, 1] = 0.0  # the code of step 3 (group 7) set to code 0 by hand
        assert torch.allclose(effects[:, 7], plain[:, 0] - model(cut)[:, 0], atol=1e-6)
