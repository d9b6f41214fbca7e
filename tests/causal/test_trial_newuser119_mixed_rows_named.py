"""newuser119 trial: a temporal shift network (TSM) whose shift runs along the flattened ``[N·T, C, H, W]`` frames
(``out[1:] = x[:-1]``, not along T of ``x.view(N, T, ...)``) gives frame 0 of each clip the last frame of the clip
before it. The stacked-rows check refused its input effects with the cause of a branch on a batch statistic, "which
the clean probe's check cannot see". The refusal now names the module that mixes the rows (its output differs alone,
its input does not) and, for a module that folds rows per sample, the shift along the fold and the view back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.stacked_rows import RowsAlone, StackedRowsError

T = 4


class Shift(nn.Module):
    """Half the channels shifted forward by one frame, the rest kept; ``leaky``: along the folded rows, across clips."""

    def __init__(self, leaky: bool) -> None:
        super().__init__()
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.shape[1] // 2
        if self.leaky:
            out = x.clone()
            out[1:, :f], out[:1, :f] = x[:-1, :f], 0.0
            return out
        v = x.view(-1, T, *x.shape[1:])
        out = v.clone()
        out[:, 1:, :f], out[:, :1, :f] = v[:, :-1, :f], 0.0
        return out.view_as(x)


class TinyTSM(nn.Module):
    def __init__(self, leaky: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.shift = Shift(leaky)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, T, 1, H, W]
        n = x.shape[0]
        h = self.conv(self.shift(torch.relu(self.stem(x.flatten(0, 1)))))
        return self.head(torch.relu(h).mean((2, 3))).view(n, T, -1).mean(1)


class BatchAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x @ x.T, 1) @ x  # every row reads every other row of the batch


def _model(leaky: bool) -> nn.Module:
    torch.manual_seed(1)  # clips 1 to 4 alone differ by 3.7% to 5.1% of their scale in the pass (the refusal takes 1%)
    return TinyTSM(leaky).eval()


def _clips() -> torch.Tensor:
    return 4 * torch.randn(5, T, 1, 6, 6, generator=torch.Generator().manual_seed(1))


def _refusal(model: nn.Module, x: torch.Tensor) -> str:
    with pytest.raises(StackedRowsError) as err, torch.no_grad():
        RowsAlone("input_effects", model=model)(lambda idx: model(x[idx]), torch.arange(len(x)), lambda out: out)
    return str(err.value)


def test_a_shift_along_the_folded_frames_is_named_with_the_view_back():
    model, x = _model(True), _clips()
    text = _refusal(model, x)
    assert "module 'shift' mixes the rows of the pass" in text and "its input does not" in text  # was the branch cause
    assert f"folds {T} rows per row of the pass" in text and "x.view(-1, T, *x.shape[1:]) along dimension 1" in text
    assert "which the clean probe's check cannot see" not in text
    assert all(not m._forward_hooks for m in model.modules())  # no hook left behind
    fixed = _model(False)  # the same weights, the shift along T: the rows pass
    with torch.no_grad():
        out = RowsAlone("input_effects", model=fixed)(lambda idx: fixed(x[idx]), torch.arange(5), lambda out: out)
        assert torch.allclose(out, torch.cat([fixed(x[i:i + 1]) for i in range(5)]), atol=1e-5)


def test_a_module_mixing_rows_of_one_per_sample_is_named():
    model = nn.Sequential(nn.Linear(3, 3), BatchAttention(), nn.Linear(3, 2)).eval()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    text = _refusal(model, x)
    assert "module '1' mixes the rows of the pass" in text and "attention or a statistic across the batch's rows" in text


def test_rows_mixed_in_the_forwards_own_code_keep_the_general_cause():
    class Centred(nn.Module):  # mixed in functional code before a module: no module is said to mix them
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x - 0.5 * x.mean(0))

    torch.manual_seed(0)
    model = Centred().eval()
    text = _refusal(model, torch.randn(6, 3, generator=torch.Generator().manual_seed(3)) + 2)
    assert "mixes the rows of the pass" not in text and "control flow on a batch statistic" in text
