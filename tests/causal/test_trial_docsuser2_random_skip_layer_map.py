"""layer_causal_map on a model that draws random numbers in eval mode from a generator it holds
(docs/your_model.md, 'Models that draw random numbers in eval mode') and skips a block at random
(stochastic depth that ignores ``self.training``): a mapped module that did not run in one block's
seeded clean pass failed with a bare ``KeyError: 'b'``, and causal_graph's later passes with a
``KeyError`` or a bare ``RuntimeError``. They are now a ValueError naming the module, the samples of
that pass and the way out."""

import warnings

import torch

from lightning_causal.causal import layer_causal_map
from tests.helpers.random_skip import RandomSkip as _RandomSkip


def test_a_module_skipped_at_random_is_a_value_error_naming_it():
    seen = []
    for seed in range(20):
        torch.manual_seed(0)
        x = torch.randn(8, 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                layer_causal_map(_RandomSkip(seed).eval(), x, layers=["a", "b"], target=0, max_batch_size=2)
            except ValueError as err:  # a KeyError before
                assert "'b'" in str(err)
                seen.append(str(err))
    assert any("to run in every pass" in m and "layers=" in m for m in seen), seen



def test_causal_graph_names_a_module_skipped_at_random_in_its_faithfulness_passes():
    from lightning_causal.causal import causal_graph

    errors = []
    for seed in range(20):
        torch.manual_seed(0)
        x = torch.randn(8, 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                causal_graph(_RandomSkip(seed).eval(), x, ["a", "b"], target=0)
            except Exception as err:  # noqa: BLE001 - the kind is the point: a bare RuntimeError before
                errors.append(err)
    bad = [repr(e)[:300] for e in errors if not (isinstance(e, ValueError) and "'b'" in str(e))]
    assert errors and not bad, bad
