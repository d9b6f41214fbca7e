"""The layer map's interventions subtract each pass's layer outputs from the clean activations by slices of
the samples, not by gathering the clean rows of every pass (layermap_speed helper): the values are those
from before the change (pinned), whatever the chunking, and no pass copies the clean activations."""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_causal.causal.structure.layer_map import layer_causal_map
from lightning_causal.causal.structure.layer_trace import rows_minus


def _cnn(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).to(dtype)
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return model, x


# computed by the code before the change (layer_trace.one_pass gathering h[s] per layer and pass)
PINNED = {
    (torch.float64, None): ([0.31678946439749506, 0.09671123516508599, 0.28970071764637245],
                            [0.057148709536661006, 0.03985140575166365, 0.05629315397573155],
                            0.027407069220504374, 0.05757733208930788, 97.36491095445359),
    (torch.float64, 100): ([0.6444864414617049, 0.2474805375359822, 0.42183385545142493],
                           [0.057148709536661006, 0.03985140575166365, 0.05629315397573155],
                           0.027407069220504374, 0.05757733208930788, 97.36491095445359),
    (torch.float32, None): ([0.3286141951484126, 0.09483441699736636, 0.27179093701071483],
                            [0.05756006017327309, 0.037862904369831085, 0.06145324185490608],
                            0.029860863462090492, 0.05761977285146713, 98.18193407356739),
    (torch.float32, 100): ([0.6455292411534791, 0.24112561416121422, 0.3651897853113213],
                           [0.05756006017327309, 0.037862904369831085, 0.06145324185490608],
                           0.029860863462090492, 0.05761977285146713, 98.18193407356739),
}


@pytest.mark.parametrize(("dtype", "max_rows"), list(PINNED))
def test_layer_map_of_a_cnn_keeps_its_values(dtype, max_rows):
    model, x = _cnn(dtype)
    lm = layer_causal_map(model, x, max_rows=max_rows)  # one group per element: 192 groups x 5 samples
    cka, response, s_out, s_in, effects = PINNED[(dtype, max_rows)]
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert lm.layers == ["0", "3", "6"]
    assert [float(lm.cka[0, 1]), float(lm.cka[0, 2]), float(lm.cka[1, 2])] == pytest.approx(cka, rel=tol, abs=tol)
    assert lm.response.tolist() == pytest.approx(response, rel=tol)
    assert lm.meta["output_response"] == pytest.approx(s_out, rel=tol)
    assert lm.meta["input_response"] == pytest.approx(s_in, rel=tol)
    assert float(lm.group_effects["0"].sum()) == pytest.approx(effects, rel=tol)


@pytest.mark.parametrize("rows", [1, 3, 5, 7, 12, 23])
def test_layer_map_is_the_same_for_every_chunking(rows):
    """Passes that start inside a run of samples, hold several runs, or end inside one: the same numbers (float64,
    to the rounding of the convolution kernels, which differs with the batch size) as one pass of every row."""
    model, x = _cnn(torch.float64)
    whole = layer_causal_map(model, x, max_rows=200)
    chunked = layer_causal_map(model, x, max_rows=200, max_batch_size=rows)
    assert torch.allclose(chunked.cka, whole.cka, rtol=1e-10, atol=1e-12)
    assert torch.allclose(chunked.response, whole.response, rtol=1e-10, atol=0)
    for k in whole.group_effects:
        assert torch.allclose(chunked.group_effects[k], whole.group_effects[k], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(("start", "rows"), [(0, 4), (2, 1), (2, 3), (4, 9), (3, 14), (0, 10)])
def test_rows_minus_is_the_clean_row_of_each_sample_minus_the_pass(start, rows):
    h = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = torch.randn(rows, 2, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = h[(torch.arange(rows) + start) % 5] - got
    out = rows_minus(h, got.clone(), start)
    assert torch.equal(out, expected)
    into = torch.empty_like(got)
    assert rows_minus(h, got, start, out=into) is into and torch.equal(into, expected)  # got left as it was
    assert torch.equal(got, torch.randn(rows, 2, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))


class _CopiesOf(TorchDispatchMode):
    """Counts the gathers (index, index_select) of tensors with ``shape``."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.count = torch.Size(shape), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.index.Tensor, torch.ops.aten.index_select.default) and args[0].shape == self.shape:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_passes_do_not_gather_the_clean_activations():
    """Before: every pass gathered each layer's clean rows h[s] three times (the check of the pass's shape, the
    dropped-layer check and the difference): a copy of every layer's outputs per pass, a third of the audit's
    time on a 3x32x32 CNN. The clean activations [5, 4, 8, 8] of layer 0 are gathered by no pass now."""
    model, x = _cnn(torch.float64)
    with _CopiesOf((5, 4, 8, 8)) as mode:
        layer_causal_map(model, x, max_batch_size=64)
    assert mode.count == 0


class _Twice(nn.Module):
    """``shared`` runs twice per pass, the second time on other values; ``relu_`` then writes into its output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first, self.shared, self.head = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = self.shared(self.first(x))
        return self.head(self.shared(torch.tanh(h)).relu_())


def test_a_module_run_twice_is_read_at_its_last_call_before_the_model_writes_into_it():
    """The difference is taken in the hook now (no copy of the output): at every call, the last one kept, and before
    the in-place ReLU after it. Reference: each group set to 0 in turn, the last call's output recorded by a copy."""
    model, x = _Twice().double(), torch.randn(7, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    seen = {}
    handle = model.shared.register_forward_hook(lambda m, i, o: seen.__setitem__("h", o.detach().clone()))
    with torch.no_grad():
        model(x)
        clean, norms = seen["h"], []
        for g in range(4):
            xg = x.clone()
            xg[:, g] = 0.0
            model(xg)
            norms.append((clean - seen["h"]).norm(dim=1))
    handle.remove()
    with pytest.warns(UserWarning, match="runs several times per forward pass"):
        lm = layer_causal_map(model, x, torch.arange(4)[None], ["shared", "head"], max_batch_size=5)
    expected = torch.cat(norms).mean() / clean.norm(dim=1).mean()
    assert float(lm.response[0]) == pytest.approx(float(expected), rel=1e-12)


class _Clones(TorchDispatchMode):
    """Counts the copies (clone) of tensors of ``rows`` rows of shape ``[rows, *shape]``."""

    def __init__(self, rows, shape):
        super().__init__()
        self.rows, self.shape, self.count = rows, torch.Size(shape), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.clone.default and args[0].shape[1:] == self.shape and args[0].shape[0] == self.rows:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_passes_take_the_difference_in_the_hook_without_copying_the_output():
    """Before: capture copied every layer output of every pass, then the difference was taken from the copy. 960 rows in
    passes of 64: 15 passes of 64 rows, none of whose outputs of layer 0 [64, 4, 8, 8] is copied now."""
    model, x = _cnn(torch.float64)
    with _Clones(64, (4, 8, 8)) as mode:
        layer_causal_map(model, x, max_batch_size=64)
    assert mode.count == 0


class _Squeezed(nn.Module):
    """A score per row, ``[R]``, squeezed: a 0-d tensor for a pass of one row."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(x).squeeze()


class _Scored(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first, self.score, self.out = nn.Linear(4, 4), _Squeezed(), nn.Linear(4, 3)

    def forward(self, x):
        h = self.first(x)
        return self.out(h) * self.score(h)[..., None]


def test_a_layer_that_returns_a_0d_tensor_for_a_pass_of_one_row_is_refused_by_name():
    """Review of 2f69098: the hook compared the output's shape from dimension 1 on, then read its dimension 0; a layer
    squeezing a one-row pass to a 0-d tensor (4 groups x 3 samples in passes of 11: the last pass holds one row) raised
    IndexError ('tuple index out of range') inside the model instead of check_rows' refusal naming the layer."""
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"Expected module 'score' to return \[1\] for a pass of 1 intervened rows.*returned \[\]"):
        layer_causal_map(_Scored(), x, torch.arange(4)[None], ["first", "score"], max_batch_size=11)
