"""docs/your_model.md (40543ea2) says that ``CausalRepairModule``'s terms keep a fit's decision to pass a weight whole
on a short last batch, and now that a term's ``loss`` called directly on such a batch does not (nor a fit's first
batch when that one is the short one: no batch has decided yet): the weight ``w [16, 4]`` beside 16 rows is gathered
by row there, and the way out the docs give, ``mark_whole((w,), [0])``, passes it whole."""

from __future__ import annotations

import torch

from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from tests.repair.test_leftovers_s30b_short_batch_weight import Hyper, _batch


def _expected(model: Hyper, term: CounterfactualFairnessTerm, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    k = x.shape[0] // 2  # fraction=0.5: the first half of the rows, every row's sensitive column flipped, w whole
    with torch.no_grad():
        return term.loss_from_outputs(model(x[:k], w), model(AttributeFlip(0)(x[:k]), w), None)


def test_a_terms_loss_called_directly_on_a_short_batch_passes_a_marked_weight_whole() -> None:
    torch.manual_seed(0)
    model, w, x = Hyper(), torch.randn(16, 4), _batch(16)
    term = CounterfactualFairnessTerm(AttributeFlip(0), fraction=0.5)
    expected = _expected(model, term, x, w)
    with torch.no_grad():
        marked = term.loss(model, x, None, additional_forward_args=mark_whole((w,), [0]))
        unmarked = term.loss(model, x, None, additional_forward_args=(w,))
    torch.testing.assert_close(marked, expected)
    assert not torch.allclose(unmarked, expected)  # rows of w: what the docs warn of

