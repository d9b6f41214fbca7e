"""A model's error that ends with a full stop (torch's own often do: "... for tensor number 1 in the list.") gets its
hint after ONE full stop at every site that adds one (pass_errors.ended): Forward's keyword clash, the Captum baselines'
dtype hint, the linked-rows graph hint and a callable output='s row-wise advice gave "..", as Forward's other raises
did before session 45."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine import linked_samples, sample_independence
from lightning_causal.causal.engine.forward import ROW_WISE_OUTPUT, Forward
from lightning_causal.causal.engine.output_selection import select_output
from lightning_causal.causal.engine.pass_errors import ended


class _Dotted(nn.Module):
    """A linear model whose errors end with a full stop, as many of torch's do."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x, *rest, **named):
        if "image" in named:  # Python's own clash, its message closed by a full stop
            raise TypeError("_Dotted.forward() got multiple values for argument 'image'.")
        try:
            return self.lin(x)
        except RuntimeError as err:
            raise RuntimeError(f"{err}.") from None


def _one_stop(text: str, before: str) -> None:
    assert ".." not in text, text
    assert f"{before}. " in text, text


def test_ended_closes_a_message_with_one_full_stop():
    assert ended(RuntimeError("in the list.")) == "in the list."
    assert ended(RuntimeError("in the list")) == "in the list."
    assert ended(ValueError("a...")) == "a."


def test_the_keyword_clash_hint_follows_one_full_stop():
    with pytest.raises(TypeError) as info:
        input_effects(_Dotted(), torch.randn(6, 4), None, target=0, additional_forward_args={"image": torch.zeros(6)})
    _one_stop(str(info.value), "for argument 'image'")
    assert "`additional_forward_args` passes `image` as a keyword" in str(info.value)


def test_the_captum_dtype_hint_follows_one_full_stop():
    with pytest.raises(RuntimeError) as info:
        attribute(_Dotted().double(), torch.randn(6, 4), "Saliency", target=1)
    _one_stop(str(info.value), "but got Float and Double")
    assert "Argument `inputs` is torch.float32 but the model's parameters are torch.float64" in str(info.value)


def test_the_graph_hint_of_linked_rows_follows_one_full_stop(monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("Expected the model to treat samples independently, but sample 1 differs.")

    monkeypatch.setattr(sample_independence, "check_samples_independent", refuse)
    x, edges = torch.randn(4, 4), torch.tensor([[0, 1, 2], [1, 2, 3]])
    model = nn.Linear(4, 2)
    forward = Forward(model, additional_forward_args=(edges,), num_samples=4)
    monkeypatch.setattr(linked_samples, "_check_reordered", lambda *a, **k: None)
    with pytest.raises(ValueError) as info:
        linked_samples.check_rows_independent(forward, (x,), model(x), "input_effects")
    _one_stop(str(info.value), "sample 1 differs")
    assert linked_samples.GRAPH_HINT in str(info.value)


def test_the_row_wise_advice_of_a_callable_output_follows_one_full_stop():
    def read(out):
        raise RuntimeError("The size of tensor a (6) must match the size of tensor b (2) at non-singleton dimension 0.")

    with pytest.raises(RuntimeError) as info:
        select_output(torch.zeros(6, 3), read)
    _one_stop(str(info.value), "at non-singleton dimension 0")
    assert ROW_WISE_OUTPUT in str(info.value)
