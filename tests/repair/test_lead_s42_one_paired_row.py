"""One row paired beside a training-mode BatchNorm in a model that draws (final read B F1): since 8d86e9ad the
fairness term ran the paired rows ``a`` as a pass of their own where the model draws, and a training-mode BatchNorm1d
cannot normalise one row (torch: "Expected more than 1 value per channel when training"), so a short last batch of 2
rows at fraction=0.5 killed the fit, which ran before. One row runs as one pass of both halves, warned once per model;
two rows or more are paired as before."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)).train()


def _rows(n):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    x[:, 2] = (x[:, 2] > 0).float()
    return x


def test_one_paired_row_runs_one_pass_of_both_warned_once():
    net, term = _net(), CounterfactualFairnessTerm(AttributeFlip(2), fraction=0.5)
    x, y = _rows(2), torch.tensor([0, 1])
    with pytest.warns(UserWarning, match="gets one value per channel there"):
        first = term.loss(net, x, y)
    assert torch.isfinite(first)
    torch.manual_seed(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = term.loss(net, x, y)  # warned once per model: the second step says nothing of it
    assert not [w for w in caught if "one value per channel" in str(w.message)]
    torch.manual_seed(5)  # the step by hand: the row and its twin as rows of one pass, from the same random state
    x_cf = x[:1].clone()
    x_cf[:, 2] = 1 - x_cf[:, 2]
    out = net(torch.cat([x[:1], x_cf]))
    assert torch.allclose(got, term.loss_from_outputs(out[:1], out[1:], y[:1]))


@pytest.mark.parametrize("rows", [1, 2])
def test_paired_passes_one_row_takes_the_joint_pass_and_two_rows_pair(rows):
    from lightning_causal.repair.paired_rows import ONE_ROW, PairedPasses


    net, x = _net(), _rows(4)
    pairs, draws, a = PairedPasses(net, x.device), {}, x[:rows]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pairs.paired(draws, lambda: pairs.first(lambda: net(torch.cat([a, a])), norms=False),
                           lambda: pairs.first(lambda: net(a)),
                           lambda first: torch.cat([first, pairs.replay(lambda: net(a))]),
                           warn=lambda: None, rows=rows)
    assert out.shape == (2 * rows, 2)
    # paired passes give identical twins for identical rows; the joint pass gives each its own dropout mask
    assert torch.equal(out[:rows], out[rows:]) is (rows == 2)
    assert [str(w.message) for w in caught if "one row" in str(w.message)] == ([ONE_ROW] if rows == 1 else [])


def test_one_image_beside_batchnorm2d_is_still_paired():
    # final read D F1: a BatchNorm2d normalises one image ([1, C, H, W] holds H*W values per channel), so one row is
    # paired as before b1a8027d: a model that never reads the flipped channel gets a term of exactly 0, unwarned
    from lightning_causal.repair.paired_rows import PairedPasses

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                        nn.Flatten(), nn.Linear(4 * 5 * 5, 2)).train()
    a = torch.randn(1, 2, 5, 5)
    pairs, draws = PairedPasses(net, a.device), {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pairs.paired(draws, lambda: pairs.first(lambda: net(torch.cat([a, a])), norms=False),
                           lambda: pairs.first(lambda: net(a)),
                           lambda first: torch.cat([first, pairs.replay(lambda: net(a))]),
                           warn=lambda: None, rows=1)
    assert torch.equal(out[:1], out[1:]) and draws[net] is True
    assert not [w for w in caught if "one value per channel" in str(w.message)]
