"""Which BatchNorm calls the repair terms read as ghost BatchNorm (``PairedPasses._split``, ``_sliced_rows``).

7d274b3c read any training-mode ``BatchNorm`` call of fewer rows than the pass as a virtual batch. A ``BatchNorm`` per
expert or in a masked branch then took two passes a step and its value moved (an MoE's fairness term 0.0701 ->
0.0742), though in the joint pass a row and its twin routed to the same expert already share that call's statistics.
Virtual batches of folded frames ``[N*T, C]`` as wide as the pass's clips or wider were not seen (0.0027 for a column
the net never reads), nor a ``BatchNorm1d`` subclass calling ``super().forward`` per chunk (0.0153). A slice along
dim 0 of a larger tensor (``chunk``/``split`` views, not ``x[idx]``/``h[mask]`` gathers) is now what marks the pass as
split; a subclass normalising several calls inside its own ``forward`` was warned of with the way out (paired call by
call since leftovers_s46a).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def _rows(n: int, d: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    x[:, 3] = (torch.rand(n, generator=g) < 0.5).float()
    return x


def _count(model: nn.Module) -> list[int]:
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    return calls


class _MoE(nn.Module):
    """Four experts with a BatchNorm each, top-1 routed by a gate: each expert is given a gather of the rows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU()) for _ in range(4))
        self.gate, self.head = nn.Linear(6, 4), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route, h = self.gate(x).argmax(1), x.new_zeros(x.shape[0], 8)
        for e, expert in enumerate(self.experts):
            idx = (route == e).nonzero().squeeze(1)
            if idx.numel():
                h = h.index_copy(0, idx, expert(x[idx]))
        return self.head(h)


class _Branch(nn.Module):
    """A BatchNorm in a branch given the rows whose column 0 is positive (``h[mask]``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.branch = nn.Linear(6, 8), nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, mask = self.fc(x).clone(), x[:, 0] > 0
        h[mask] = self.branch(h[mask])
        return self.head(torch.relu(h))


@pytest.mark.parametrize(("make", "n"), [(_MoE, 40), (_MoE, 6), (_Branch, 40)])
def test_an_expert_or_branch_batchnorm_keeps_the_joint_pass(make, n: int) -> None:
    # before (7d274b3c): passes [80, 40, 40, 40, 40], 0.0742 for the MoE; at 6 rows an expert given one row, ONE_VALUE
    x = _rows(n, seed=1 if n == 40 else 3)
    model, term = make().train(), CounterfactualFairnessTerm(AttributeFlip(3))
    calls = _count(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [term.loss(model, x, None) for _ in range(2)]
    assert calls == [2 * n, 2 * n]
    assert not [w for w in caught if "BatchNorm" in str(w.message)]
    out = make().train()(torch.cat([x, AttributeFlip(3)(x)]))  # the joint pass by hand: a row and its twin share a call
    want = term.loss_from_outputs(out[:n], out[n:], None)
    for value in got:
        torch.testing.assert_close(value, want, rtol=0, atol=0)


class _FoldedGhost(nn.Module):
    """Clips ``[N, T, 3]``: frames folded into ``[N*T, 6]`` and normalised in virtual batches of 16 frames."""

    def __init__(self, keep: tuple[float, ...] = (1.0, 1.0, 1.0), t: int = 8) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.t, self.keep = t, torch.tensor(keep)
        self.fc, self.bn, self.head = nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc((x * self.keep).flatten(0, 1))
        h = torch.cat([self.bn(c) for c in h.chunk(math.ceil(h.shape[0] / 16))])
        return self.head(torch.tanh(h).view(x.shape[0], self.t, -1).mean(1))


def _flip2(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[..., 2] = 1 - y[..., 2]
    return y


def _clips(m: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(m)
    x = torch.randn(m, 8, 3, generator=g)
    x[..., 2] = (torch.rand(m, 8, generator=g) < 0.5).float()
    return x


def test_folded_frames_of_an_unread_column_give_zero() -> None:
    # 5 clips of 8 frames: the joint pass's 80 frames in virtual batches of 16 (each no wider than the pass's 10
    # clips), rows' and twins' clips in virtual batches of their own; before: 0.0027
    model = _FoldedGhost(keep=(1.0, 1.0, 0.0)).train()
    assert float(CounterfactualFairnessTerm(_flip2).loss(model, _clips(5), None).detach()) == 0.0


def test_folded_frames_value_and_gradient_equal_the_virtual_batch_reference() -> None:
    x, m = _clips(5), 5
    term = CounterfactualFairnessTerm(_flip2)
    net = _FoldedGhost().train()
    got = term.loss(net, x, None)
    got.backward()
    ref = _FoldedGhost().train().double()  # float64: the twins' virtual batch k normalised by the rows' k
    ha, hb = ref.fc(x.double().flatten(0, 1)), ref.fc(_flip2(x).double().flatten(0, 1))
    k = math.ceil(ha.shape[0] / 16)

    def norm(h: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
        return (h - by.mean(0)) / torch.sqrt(by.var(0, unbiased=False) + ref.bn.eps) * ref.bn.weight + ref.bn.bias

    za = torch.cat([norm(c, c) for c in ha.chunk(k)])
    zb = torch.cat([norm(c, r) for c, r in zip(hb.chunk(k), ha.chunk(k))])
    out = torch.cat([ref.head(torch.tanh(z).view(m, 8, -1).mean(1)) for z in (za, zb)])
    want = term.loss_from_outputs(out[:m], out[m:], None)
    want.backward()
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad.double(), q.grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")
    assert int(net.bn.num_batches_tracked) == k  # the rows' virtual batches only


class _GhostSub(nn.BatchNorm1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        return torch.cat([super(_GhostSub, self).forward(c) for c in x.chunk(math.ceil(x.shape[0] / 16))])


class _SubNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.bn, self.head = nn.Linear(6, 8), _GhostSub(8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.fc(x))))


def test_a_ghost_batchnorm_subclass_is_paired_unwarned() -> None:
    # its module hooks see one call of the pass's 80 rows; before: 0.0153 for an unread column, silently; then warned
    # SPLIT_INSIDE; since leftovers_s46a paired call by call (tests/repair/test_leftovers_s46a_split_inside_paired.py)
    model, term = _SubNet().train(), CounterfactualFairnessTerm(AttributeFlip(3))
    calls = _count(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(model, _rows(40), None)
        term.loss(model, _rows(40), None)
    assert not [w for w in caught if "BatchNorm" in str(w.message)]
    assert calls == [80, 40, 40, 40, 40]  # the rows and their twins as two passes, paired
    plain = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)).train()
    torch.manual_seed(0)
    one_call = nn.Sequential(nn.Linear(6, 8), _BatchNormAct(8), nn.Linear(8, 2)).train()  # a subclass, counted
    for model in (plain, one_call):  # 93800869's negative case (leftovers_s46b 10), kept: one joint pass, unwarned
        calls = _count(model)
        with warnings.catch_warnings(record=True) as none:
            warnings.simplefilter("always")
            term.loss(model, _rows(40), None)
            term.loss(model, _rows(40), None)
        assert not [w for w in none if "BatchNorm" in str(w.message)], type(model[1]).__name__
        assert calls == [80, 80], type(model[1]).__name__


class _BatchNormAct(nn.BatchNorm1d):
    """timm's BatchNormAct2d in one dimension: one batch-norm call of the whole batch, then an activation (a subclass,
    not in the rule's plain types: its calls are counted, and one call a pass is no split inside)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().forward(x))


class _SplitGhost(nn.Module):
    """Virtual batches by ``x.split(16)``, whose last may hold one row; dropout after them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.bn, self.drop, self.head = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.2), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = torch.cat([self.bn(c) for c in h.split(16)]) if h.shape[0] > 16 else self.bn(h)
        return self.head(self.drop(torch.relu(h)))


def test_one_value_names_the_way_out_and_is_warned_apart_from_one_row() -> None:
    # before: a model warned ONE_ROW (one row that drew) was never warned ONE_VALUE, which named no way out
    from lightning_causal.repair.paired_rows import ONE_ROW, ONE_VALUE

    model, term = _SplitGhost().train(), CounterfactualFairnessTerm(AttributeFlip(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(model, _rows(1), None)  # one row that drew
        term.loss(model, _rows(17), None)  # the rows alone: virtual batches of 16 and 1 row
        term.loss(model, _rows(17), None)
    said = [str(w.message) for w in caught if "one value per channel" in str(w.message)]
    assert said == [ONE_ROW, ONE_VALUE]
    assert "x.chunk(math.ceil(n / size)) rather than x.split(size)" in ONE_VALUE
