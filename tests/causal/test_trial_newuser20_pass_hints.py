"""Validation sweep (newuser20): a model pass fed the wrong input, and output= naming nothing.

Inputs of 5 features for a model whose first layer takes 4 (or transposed) stopped with torch's
'mat1 and mat2 shapes cannot be multiplied (6x5 and 4x8)' alone; output='logits' for a model
returning a plain tensor said it 'failed: AttributeError', output='logit' that it 'got
builtin_function_or_method' (Tensor.logit, a method)."""

import pytest
import torch
from torch import nn

from lightning_causal import causal_graph, input_effects, unit_effects


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
WIDTH = r"Argument `inputs` has 5 features per sample \(its last dimension\) but the model's first layer '0' \(Linear\) takes 4"


@pytest.mark.parametrize("call, error, message", [
    (lambda: input_effects(_mlp(), torch.randn(6, 5)), RuntimeError, r"mat1 and mat2 .*\. " + WIDTH),
    (lambda: unit_effects(_mlp(), torch.randn(6, 5), "1"), RuntimeError, WIDTH),
    (lambda: causal_graph(_mlp(), torch.randn(6, 5), ["1"]), RuntimeError, WIDTH),
    (lambda: input_effects(_mlp(), X.T), RuntimeError, r"has 6 features per sample .* takes 4; transposed\? its first dimension is 4"),
    (lambda: input_effects(_mlp(), X, output="logits"), TypeError,
     r"`output='logits'` to name an entry of a mapping or an attribute .* returns Tensor: .*pass no `output=`"),
    (lambda: input_effects(_mlp(), X, output="logit"), TypeError, r"`output='logit'` to name an entry"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_width_error_after_a_convolution_gets_no_input_hint():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)).eval()  # takes 4 x 4 images
    with pytest.raises(RuntimeError, match=r"mat1 and mat2") as info:
        input_effects(model, torch.randn(2, 1, 5, 5))
    assert "features per sample" not in str(info.value)  # the Linear's width is not the input's


@pytest.mark.parametrize("call, error, message", [
    # one sample of 4 features without its batch dimension: the first pass (all rows) gets the model's single row back
    (lambda: input_effects(_mlp(), torch.randn(4)), ValueError,
     r"argument `inputs` is 1-D \[4\], read as 4 samples of one value, .*for one sample of 4 features pass x\[None\] \(\[1, 4\]\)"),
    # the estimators whose first pass runs one row
    (lambda: unit_effects(_mlp(), torch.randn(4), "1"), RuntimeError,
     r"`inputs` is 1-D \(samples of one value each\) but the model's first layer '0' \(Linear\) takes 4 features per row: "
     r"for one sample of 4 features pass x\[None\]"),
    # samples of one feature for a model of one input feature
    (lambda: input_effects(nn.Linear(1, 2), torch.randn(4)), RuntimeError,
     r"`inputs` is 1-D .* but the model \(Linear\) takes 1 features per row: pass them as x\[:, None\] \(\[N, 1\]\)"),
])
def test_a_flat_input_is_refused_with_the_way_out(call, error, message):
    """Before: 'one row per input row (4) but got shape (3,); pass `output=` a callable ...', and torch's
    'mat1 and mat2 shapes cannot be multiplied (1x1 and 4x8)' alone."""
    with pytest.raises(error, match=message):
        call()
