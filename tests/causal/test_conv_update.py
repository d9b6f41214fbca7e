"""The linear update for convolution readers (engine/conv_update.py, leftovers_s33a): a ``nn.Conv1d`` / ``Conv2d`` /
``Conv3d`` reading an intervened layer's output is answered as its probe output plus the convolution of the changed
channels' change through their weight slice, ``y' = y + conv((h' - h)_S, W[:, S])``. The effects equal full forward
passes in float64 (stride, padding of every mode, dilation, groups, 1-D to 3-D, hooks, in-place changes); the update is
taken where a unit is at most an eighth of a group's input channels and refused elsewhere (depthwise convolutions,
units straddling two groups, units along the width that reach over an eighth of it, subclasses; positions the update
answers: tests/causal/test_leftovers_s34c_conv_positions.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine import linear_update
from lightning_causal.causal.engine.interventions import Scale
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from tests.causal.test_graph_linear_s32_sweep import (  # noqa: F401
    _assert_same_graph,
    _ProductRows,
    _reference,
    full_passes,
)

TRIAL = 2  # rows of the cache's trial check of the update, per kind of unit


class Net(nn.Module):
    """``first`` (2 -> C channels), ``act`` (the intervened layer), ``reader``, then a linear head on every output
    element. ``traced=False``: data-dependent control flow, torch.fx cannot trace it (the hook split runs);
    ``inplace``: ``act``'s output doubled in place before ``reader`` reads it."""

    def __init__(self, reader: nn.Module, *, channels: int = 16, spatial: tuple[int, ...] = (7, 6),
                 act: nn.Module | None = None, traced: bool = True, inplace: bool = False) -> None:
        super().__init__()
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[len(spatial) - 1]
        self.first, self.act, self.reader = conv(2, channels, 3, padding=1), act or nn.Tanh(), reader
        self.traced, self.inplace, self.spatial = traced, inplace, spatial
        with torch.no_grad():
            size = self.reader(torch.zeros(1, channels, *spatial)).numel()
        self.head = nn.Linear(size, 3)

    def forward(self, x):
        if not self.traced and not bool(torch.isfinite(x).all()):
            raise ValueError("non-finite input")
        h = self.act(self.first(x))
        if self.inplace:
            h.mul_(2.0)
        return self.head(torch.tanh(self.reader(h)).flatten(1))


def _case(reader: nn.Module, n: int = 5, **kw):
    torch.manual_seed(0)
    model = Net(reader, **kw).double().eval()
    x = torch.randn(n, 2, *model.spatial, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return model, x


def _effects(model, x, layer="act", **kw):
    fast, info = unit_effects(model, x, layer, target=1, return_info=True, **kw)
    full = unit_effects(model, x, layer, target=1, use_suffix=False, **kw)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    return info


ANSWERED = {
    "plain": lambda: nn.Conv2d(16, 6, 3, padding=1),
    "stride, padding, dilation": lambda: nn.Conv2d(16, 6, 3, stride=2, padding=2, dilation=2),
    "rectangular kernel and stride": lambda: nn.Conv2d(16, 6, (3, 2), stride=(2, 1), padding=(1, 0)),
    "same, even kernel, dilated": lambda: nn.Conv2d(16, 6, 4, padding="same", dilation=(2, 1)),
    "valid, no bias": lambda: nn.Conv2d(16, 6, 2, padding="valid", bias=False),
    "reflect": lambda: nn.Conv2d(16, 6, 3, padding=1, padding_mode="reflect", stride=2),
    "replicate": lambda: nn.Conv2d(16, 6, 3, padding=(2, 1), padding_mode="replicate"),
    "circular": lambda: nn.Conv2d(16, 6, 3, padding=2, padding_mode="circular", dilation=2),
    "two groups": lambda: nn.Conv2d(16, 8, 3, padding=1, groups=2),
    "1-D": lambda: nn.Conv1d(16, 6, 5, stride=2, padding=2),
    "1-D circular": lambda: nn.Conv1d(16, 6, 3, padding=1, padding_mode="circular"),
    "3-D": lambda: nn.Conv3d(16, 4, 3, stride=(1, 2, 2), padding=1, dilation=(1, 1, 2)),
}
SPATIAL = {"1-D": (9,), "1-D circular": (9,), "3-D": (4, 5, 6)}


@pytest.mark.parametrize("traced", [True, False], ids=["fx", "hooks"])
@pytest.mark.parametrize("name", list(ANSWERED))
def test_convolution_readers_equal_the_full_passes_and_take_the_update(name, traced, updates):
    model, x = _case(ANSWERED[name](), spatial=SPATIAL.get(name, (7, 6)), traced=traced)
    info = _effects(model, x)
    assert info.path == ("fx" if traced else "hooks") and info.linear_updates == ("'reader'",)
    assert updates["rows"] == 5 * 16 + TRIAL  # every channel of every sample (tanh: none already 0)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU(inplace=True), nn.BatchNorm2d(16)], ids=["relu", "relu-inplace", "batchnorm"])
def test_a_convolution_reading_a_relu_or_batchnorm_output(act, updates):
    if isinstance(act, nn.BatchNorm2d):
        torch.manual_seed(3)
        act.running_mean.normal_()
        act.running_var.uniform_(0.5, 2.0)
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1), act=act)
    info = _effects(model, x, intervention=Scale(-1.5))
    assert info.linear_updates == ("'reader'",) and updates["rows"] > TRIAL


@pytest.mark.parametrize("traced", [True, False], ids=["fx", "hooks"])
def test_an_input_changed_in_place_before_the_convolution_reads_it_runs_the_layer(traced, updates):
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1), inplace=True, traced=traced)
    info = _effects(model, x)
    assert info.linear_updates == () and updates["rows"] == 0  # the probe's conv read 2h, not the cached h


@pytest.mark.parametrize("hook", ["returns", "in place"])
def test_a_hook_on_the_reader_acts_on_the_update_as_on_the_convolution(hook, updates):
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1))
    if hook == "returns":
        model.reader.register_forward_hook(lambda _m, _i, out: 2.0 * out + 1.0)
    else:
        model.reader.register_forward_hook(lambda _m, _i, out: out.clamp_(max=0.1))
    info = _effects(model, x)
    assert info.linear_updates == ("'reader'",) and updates["rows"] == 5 * 16 + TRIAL


REFUSED = {
    "depthwise": (lambda: nn.Conv2d(16, 16, 3, padding=1, groups=16), {}),
    "four groups of 4 channels": (lambda: nn.Conv2d(16, 8, 3, padding=1, groups=4), {}),
    "heads of 4 of 16 channels": (lambda: nn.Conv2d(16, 6, 3, padding=1), {"num_heads": 4, "unit_dim": 1}),
    "units along the width": (lambda: nn.Conv2d(16, 6, 3, padding=1), {"unit_dim": -1}),  # a reach of 3 of 16 columns
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_units_wider_than_an_eighth_of_a_group_or_off_the_channels_run_the_layer(name, updates):
    make, kw = REFUSED[name]
    model, x = _case(make(), spatial=(7, 16) if name == "units along the width" else (7, 6))
    info = _effects(model, x, **kw)
    assert info.linear_updates == () and updates["rows"] == 0


def test_channel_groups_inside_a_convolution_group_take_the_update_and_straddling_ones_do_not(updates):
    model, x = _case(nn.Conv2d(32, 4, 3, padding=1, groups=2), channels=32, n=3)
    info = _effects(model, x, num_heads=16, unit_dim=1)  # units of 2 channels, 16 channels a group
    assert info.linear_updates == ("'reader'",) and updates["rows"] == 3 * 16 + TRIAL
    model, x = _case(nn.Conv2d(120, 6, 3, padding=1, groups=3), channels=120, spatial=(4, 4), n=3)
    before = updates["rows"]
    info = _effects(model, x, num_heads=40, unit_dim=1)  # units of 3 channels, groups of 40: unit 13 straddles two
    assert info.linear_updates == () and updates["rows"] == before


def test_a_convolution_subclass_runs_as_usual(updates):
    class Scaled(nn.Conv2d):
        def forward(self, x):
            return 2.0 * super().forward(x)

    model, x = _case(Scaled(16, 6, 3, padding=1))
    assert _effects(model, x).linear_updates == () and updates["rows"] == 0


def test_a_convolution_and_a_linear_layer_reading_one_output_each_answer_their_own_units(updates):
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.act = nn.Conv1d(2, 16, 3, padding=1), nn.Tanh()
            self.conv, self.lin = nn.Conv1d(16, 4, 3), nn.Linear(16, 4)  # channels / positions of [N, 16, 16]
            self.head = nn.Linear(4 * 14 + 16 * 4, 2)

        def forward(self, x):
            h = self.act(self.first(x))
            return self.head(torch.cat([self.conv(h).flatten(1), self.lin(h).flatten(1)], 1))

    torch.manual_seed(0)
    model = Both().double().eval()
    x = torch.randn(4, 2, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert _effects(model, x, unit_dim=1).linear_updates == ("'conv'",)
    assert updates["rows"] == 4 * 16 + TRIAL
    assert _effects(model, x, unit_dim=-1).linear_updates == ("'lin'",)
    assert updates["rows"] == 2 * (4 * 16 + TRIAL)


def test_channels_last_tensors_and_weights_equal_the_full_passes(updates):
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1, stride=2))
    model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    assert not model.reader.weight.is_contiguous()
    assert _effects(model, x).linear_updates == ("'reader'",) and updates["rows"] == 5 * 16 + TRIAL


def test_a_wrong_convolution_update_is_caught_by_the_trial_rows(monkeypatch, updates):
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1))
    monkeypatch.setattr(linear_update, "add_conv_change", lambda *_a: None)  # the probe output unchanged: wrong
    assert _effects(model, x).linear_updates == ()
    assert updates["rows"] == TRIAL  # the trial's rows only: the update was dropped, not trusted


def test_the_cache_answers_by_the_update_without_autograd_only(updates):
    model, x = _case(nn.Conv2d(16, 6, 3, padding=1))

    def zero_3(h):
        return h.index_fill(1, torch.tensor([3]), 0.0)

    rows = torch.tensor([4, 0, 0])
    zero_3.changed_units = (torch.full((3,), 3), 1, 1)
    with audit_mode(model):
        with torch.no_grad():
            cache = cache_prefix(model, x, "act")
            assert cache.linear.describe(1, 1) == ["'reader'"] and cache.linear.describe(-1, 1) == []
            out = cache(zero_3, rows)
        answered = updates["rows"]
        with torch.enable_grad():
            again = cache(zero_3, rows)
    assert answered == 3 + TRIAL and updates["rows"] == answered  # under autograd the convolution runs
    with torch.no_grad():
        expected = model.head(torch.tanh(model.reader(zero_3(model.act(model.first(x[rows]))))).flatten(1))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(again.detach(), expected, rtol=0, atol=1e-12)


def test_the_graph_over_a_convolution_reader_equals_full_passes_without_its_product_per_row(monkeypatch, updates,
                                                                                            full_passes):  # noqa: F811
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 12, 3, padding=1), nn.Tanh(),
                          nn.Flatten(), nn.Linear(12 * 36, 3)).double().eval()
    x = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = _reference(full_passes, model, x, ["1", "3"], top_k=4, alpha=0.5)
    # a convolution this small is answered beside the plain suffix only with the graph's rule off (leftovers_s34c)
    monkeypatch.setattr(graph_context, "CONV_CACHE_MIN_WORK", 0)
    product = _ProductRows(model[2], monkeypatch)
    graph = causal_graph(model, x, ["1", "3"], top_k=4, alpha=0.5)
    _assert_same_graph(graph, reference)
    moving = int((model[1](model[0](x)) != 0).flatten(2).any(2).sum())  # the sweep rows of '1' that run
    assert updates["rows"] >= moving + TRIAL and moving > 200  # answered by the update: the sweep of '1' and more
    # the convolution's own product runs in the clean, trial and faithfulness passes only (200 rows); before, every
    # sweep row of '1' ran it besides them (421 rows)
    assert product.rows < moving
