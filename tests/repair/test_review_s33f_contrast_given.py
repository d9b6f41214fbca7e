"""Review of a4a12fac: ``neural_cleanse(given=)`` counts the inputs the user gave beside those searched, but its test
called ``neural_cleanse`` alone: nothing checked that ``BackdoorSuppressionTerm``'s contrast, which leaves samples of
``train_inputs`` out before its search, passes ``given=`` (the words would count the shortened set again without a
test failing). On a top-2 gate, 35 of 64 samples have at most one contrast class (3 none, 32 one); the contrast's
search runs on the other 29 and is told of the 64, while the model's own search, on every input, is told nothing."""

from __future__ import annotations

import warnings

import torch

import lightning_causal.repair.backdoor_setup as backdoor_setup
from lightning_causal import BackdoorSuppressionTerm
from tests.repair.test_review_s32a_contrast_no_shared_class import _TopK


def test_the_contrast_search_is_told_how_many_inputs_were_given(monkeypatch) -> None:
    calls: list[tuple[int, object]] = []
    search = backdoor_setup.neural_cleanse

    def recorded(model, x, num_classes, **options):
        calls.append((int(x.shape[0]), options.get("given")))
        return search(model, x, num_classes, **options)

    monkeypatch.setattr(backdoor_setup, "neural_cleanse", recorded)
    x = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(1)) - 0.5
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        term.setup(_TopK(2), x)
    assert calls == [(64, None), (29, 64)]  # the model's own search, then the contrast's on the 29 left
