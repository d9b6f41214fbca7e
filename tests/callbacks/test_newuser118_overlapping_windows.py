"""A probe of overlapping windows of one series (the first samples of a rolling-window validation set) is warned of:
its samples are dependent, which the causal graph's tests take as independent (newuser118's forecaster trial)."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.overlapping_windows import overlapping_windows

T, H = 12, 2


def _series(n: int = 300) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


class _Windows(Dataset):
    """Rolling windows of one series, stride 1, as dict samples (a forecaster's past covariates and target)."""

    def __init__(self, series: torch.Tensor):
        self.series = series

    def __len__(self):
        return len(self.series) - T - H

    def __getitem__(self, i):
        return {"x": self.series[i:i + T], "y": self.series[i + T:i + T + H, 0]}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(T * 2, H))


@pytest.mark.parametrize("layout", ["steps_first", "steps_last", "flat"])
def test_windows_found_in_every_layout(layout):
    windows = _series().unfold(0, T, 3)  # [N, 2, T]: stride 3
    x = {"steps_first": windows.transpose(1, 2), "steps_last": windows, "flat": windows[:, 0]}[layout]
    pairs, of, shift, dim = overlapping_windows(x)
    assert (pairs, of, shift) == (x.shape[0] - 1, x.shape[0] - 1, 3)
    assert dim == (2 if layout == "steps_last" else 1)


def test_first_step_seen_earlier_in_the_window_still_matches():
    """Token ids of few values: sample i + 1's first step also occurs before its true shift in sample i."""
    ids = torch.randint(0, 20, (600,), generator=torch.Generator().manual_seed(1))
    x = ids.unfold(0, 32, 16)
    assert overlapping_windows(x)[:3] == (x.shape[0] - 1, x.shape[0] - 1, 16)


def test_no_windows():
    windows = _series().unfold(0, T, 1).transpose(1, 2)
    assert overlapping_windows(windows[torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))]) is None
    assert overlapping_windows(windows[::T]) is None  # windows that share no step
    assert overlapping_windows(torch.zeros(16, T, 2)) is None  # constant rows overlap trivially
    assert overlapping_windows(torch.randn(8, 3, 16, 16)) is None  # images
    assert overlapping_windows(torch.randint(0, 3, (64, 40), generator=torch.Generator().manual_seed(0))) is None


def _messages(data, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(_model(), [InputEffectAudit(target=0, ace_values=None)], data, probe_size=32, **kwargs)
    return [str(w.message) for w in caught if "overlapping windows" in str(w.message)]


def test_probe_of_rolling_windows_is_warned():
    dataset = _Windows(_series())
    said = _messages(DataLoader(dataset, batch_size=64))
    assert len(said) == 1
    assert "31 of 31 consecutive pairs" in said[0] and "shifted by 1 step along dimension 1" in said[0]
    assert f"Subset(val_dataset, range(0, len(val_dataset), {T}))" in said[0] and "CausalGraphAudit" in said[0]
    assert _messages(torch.utils.data.Subset(dataset, range(0, len(dataset), T))) == []  # the way out


def test_binary_sequences_match_by_chance_but_not_with_one_stride():
    """0/1 sequences (spike trains, binary features) of a few samples match some shift by chance, each pair another."""
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        for n, t in [(5, 4), (5, 8), (8, 16), (16, 6)]:
            assert overlapping_windows(torch.randint(0, 2, (n, t), generator=g).float()) is None, (seed, n, t)
