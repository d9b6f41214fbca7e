"""The newuser13 trial: CaptumBaseline(input_layer=<word embeddings>) with its default baseline on token ids was
refused with "... but got 0.0", a value the user never gave; the message names the default and the token to give."""

from __future__ import annotations

import pytest

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline
from tests.helpers.text import tiny_bert_classifier, token_batch


def test_the_default_baseline_on_token_ids_is_named_with_the_token_to_give():
    ids, att = token_batch(3, 8, seed=2)
    probe = Probe(ids, additional_forward_args={"attention_mask": att})
    audit = CaptumBaseline(("LayerIntegratedGradients",), input_layer="bert.embeddings.word_embeddings")
    with pytest.raises(ValueError, match=r"got 0\.0, the default for float inputs: .*tokenizer\.mask_token_id.*`input_layer=` too"):
        audit.validate(tiny_bert_classifier(), probe)
