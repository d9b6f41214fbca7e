"""CaptumBaseline's refusal of gradient methods on token ids (newuser24 trial: a tiny BERT held as ``self.model``
of a LightningModule, ``CaptumBaseline(baseline=1, input_layer="model.bert.embeddings.word_embeddings")`` with the
default methods). The message advised ``input_layer='bert.embeddings.word_embeddings'``, a layer this model does not
have, though the user had given its own: it now shows the given ``input_layer`` and says that the methods are what
to change, naming ``methods``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe


class _Tokens(nn.Module):
    """Token ids [N, T] -> mean word embedding -> 2 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.words(ids).mean(1))


def test_the_gradient_methods_message_names_the_given_input_layer_and_the_methods_to_change():
    probe = Probe(torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError) as err:
        CaptumBaseline(baseline=1, input_layer="words").validate(_Tokens(), probe)
    message = str(err.value)
    assert "argument `methods`" in message and "['IntegratedGradients', 'Saliency']" in message
    assert "input_layer='words'" in message and "bert.embeddings" not in message
    assert "(`input_layer='words'` is given, but these methods take gradients of the token ids)" in message
    # without input_layer: the model's own nn.Embedding (newuser44: not a Hugging Face BERT's layer, which it lacks)
    with pytest.raises(ValueError, match=r"input_layer='words'"):
        CaptumBaseline(("Saliency",), baseline=1).validate(_Tokens(), probe)
    # the advice works: the layer method on the given layer runs
    assert CaptumBaseline(("LayerIntegratedGradients",), baseline=1, input_layer="words").validate(_Tokens(), probe) is None
