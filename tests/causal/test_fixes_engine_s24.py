"""Carried faults of the causal core's input handling and first-order estimates (task fixes_engine_s24).

- ``data_reading._dense`` repeated ``forward_args.map_tensors``' walk: it now calls it (``dataclasses=True``); the
  default walk leaves dataclasses whole, as ``tensor_leaves`` does (``CaptumForward`` pairs the two).
- The causes of a missing gradient were written out in each refusal: ``engine/gradient_cuts.py`` holds them.
- int16 inputs (PCM audio) were told "token ids have no gradient".
- ``method="attribution"`` refused complex inputs: it now gives ``Re(conj(grad) · (z − b))``, exact for a model linear
  in ``Re z`` and ``Im z``.
- A feature whose gradient is exactly 0 at every sample (a prototype head at ``x_i = p_i``) got an estimate of 0
  silently while setting it to the baseline moves the output: now warned about, with the count.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward_args import map_tensors, tensor_leaves
from lightning_causal.data_reading import _dense


@dataclasses.dataclass
class _Batch:
    x: torch.Tensor
    y: torch.Tensor
    name: str = "b"


def test_dense_walks_dataclasses_and_keeps_what_holds_no_sparse_tensor():
    dense = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    batch = {"b": _Batch(dense.to_sparse(), torch.tensor([1, 0])), "t": (dense.to_sparse_csr(), [dense])}
    out = _dense(batch)
    assert isinstance(out["b"], _Batch) and out["b"].name == "b" and out["b"].x.layout == torch.strided
    assert torch.equal(out["b"].x, dense) and out["b"].y is batch["b"].y
    assert torch.equal(out["t"][0], dense) and out["t"][1] is batch["t"][1]  # unchanged containers returned themselves
    plain = _Batch(dense, torch.tensor([1, 0]))
    assert _dense(plain) is plain


def test_map_tensors_leaves_dataclasses_whole_unless_asked_as_tensor_leaves_does():
    b = _Batch(torch.ones(2), torch.zeros(2))
    assert map_tensors((b,), lambda t: t + 1)[0] is b and tensor_leaves((b,)) == []
    moved = map_tensors((b,), lambda t: t + 1, dataclasses=True)[0]
    assert torch.equal(moved.x, torch.full((2,), 2.0)) and torch.equal(moved.y, torch.ones(2))


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x.float() / 32768)


def _refusal(dtype: torch.dtype) -> str:
    with pytest.raises(TypeError) as err:
        input_effects(_Linear(), torch.zeros(2, 4, dtype=dtype), baseline=0, target=0, method="attribution")
    return str(err.value)


def test_int16_inputs_are_told_their_dtype_and_the_float_cast_not_token_ids():
    says = _refusal(torch.int16)
    assert "got dtype torch.int16 (integer inputs have no gradient" in says
    assert "pass inputs.float()" in says and "method='exact'" in says
    assert "token" not in says


def test_int64_inputs_are_also_told_the_way_for_token_ids():
    says = _refusal(torch.int64)
    assert "got dtype torch.int64 (integer inputs have no gradient" in says and "pass inputs.float()" in says
    assert "token ids" in says and "embedding layer's output" in says and "method='attribution'" in says


def test_counterfactual_search_names_the_ways_for_integer_inputs():
    from lightning_causal.causal import counterfactual_explanation

    with pytest.raises(TypeError, match=r"floating tensor \[N, D, \.\.\.\] but got dtype torch\.int16 \(integer inputs have "
                                        r"no gradient: .*pass inputs\.float\(\); or use interventions"):
        counterfactual_explanation(_Linear(), torch.zeros(2, 4, dtype=torch.int16), target_class=1)


def test_the_cut_causes_are_one_text_in_the_input_and_layer_refusals():
    from lightning_causal.causal import unit_effects
    from lightning_causal.causal.engine.gradient_cuts import CUT_STEPS, DETACHED

    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return (self.a(x) > 0).to(x.dtype).sum(1, keepdim=True)

    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for call in (lambda: input_effects(Cut(), x, target=0, method="attribution"),
                 lambda: unit_effects(Cut(), x, "a", target=0, method="atp")):
        with pytest.raises(ValueError) as err:
            call()
        assert f"({DETACHED}, or {CUT_STEPS}" in str(err.value)


class _WirtingerLinear(nn.Module):
    """Real output linear in Re z and Im z: f = Re z · u + Im z · v (first order is exact)."""

    def __init__(self) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
        self.v = nn.Parameter(torch.tensor([3.0, 0.25, -1.0], dtype=torch.float64))

    def forward(self, z):
        return (z.real @ self.u + z.imag @ self.v).unsqueeze(1)


def test_attribution_of_complex_inputs_is_the_exact_effect_on_a_model_linear_in_re_and_im():
    model = _WirtingerLinear()
    z = torch.randn(5, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    b = torch.tensor(0.5 - 1.5j, dtype=torch.complex128)
    d = z - b
    u, v = model.u.detach(), model.v.detach()
    by_hand = d.real * u + d.imag * v  # f(z) - f(z | do(z_i := b)), feature by feature
    exact = input_effects(model, z, baseline=b, target=0)
    approx = input_effects(model, z, baseline=b, target=0, method="attribution")
    torch.testing.assert_close(exact, by_hand, rtol=0, atol=1e-12)
    assert approx.dtype == torch.float64
    torch.testing.assert_close(approx, by_hand, rtol=0, atol=1e-12)  # without the conjugate Im's share flips sign


class _Prototype(nn.Module):
    """A prototype head: the output is -||x - p||², whose gradient in feature i, -2 (x_i - p_i), is 0 at x_i = p_i."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor([0.5, 1.0, -0.3, 2.0], dtype=torch.float64))

    def forward(self, x):
        return -((x - self.p) ** 2).sum(1, keepdim=True)


def test_a_feature_at_the_prototype_with_a_zero_estimate_but_an_effect_is_warned_about():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 1] = 1.0  # every sample at the prototype in feature 1: gradient 0, effect -(0 - 0)² + (0 - 1)² = 1
    model = _Prototype().eval()
    torch.testing.assert_close(input_effects(model, x, target=0)[:, 1], torch.ones(6, dtype=torch.float64))
    with pytest.warns(UserWarning, match=r"1 of 4 input features \(groups \[1\]\) have a first-order estimate of 0 at "
                                         r"every sample.*method='exact'"):
        approx = input_effects(model, x, target=0, method="attribution")
    assert torch.equal(approx[:, 1], torch.zeros(6, dtype=torch.float64))  # the estimate itself is kept


def test_a_feature_at_its_baseline_or_without_effect_is_not_warned_about():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 1] = 0.0  # at the baseline: effect and estimate exactly 0
    model = _Prototype().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(model, x, target=0, method="attribution")
        input_effects(nn.Sequential(nn.Linear(4, 2)).double(), x, target=0, method="attribution")
