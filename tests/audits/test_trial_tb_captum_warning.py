"""CaptumBaseline's no-gradient warning on an image CNN (trial "tb": 32x32 RGB with max-pooling)."""

from __future__ import annotations

import warnings

import torch

from lightning_causal.audits import CaptumBaseline, Probe


def test_the_no_gradient_warning_of_an_image_cnn_names_max_pooling_as_a_cause():
    """CaptumBaseline on a 32x32 RGB CNN with max-pooling warned that IntegratedGradients and
    Saliency give 0 to patch 44 'because' of 'a category code cast to an integer inside the model,
    e.g. nn.Embedding(x[:, j].long())', and to compare 'such columns': there are neither. The
    pooled maximum passes no gradient to the patches it does not select, while zeroing them still
    moves the output; the warning now names that cause and speaks of groups."""
    class PoolMax(torch.nn.Module):  # max(x_a, -x_b): x_b gets no gradient while -x_b < x_a
        def forward(self, x):
            z = torch.maximum(x[:, 0, 0, 0], -x[:, 0, 0, 1])
            return torch.stack([z, -z], 1)

    x = torch.tensor([[-0.5, 1.0], [-0.4, 2.0], [-0.3, 1.5]]).reshape(3, 1, 1, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CaptumBaseline(("Saliency",), target=0).run(PoolMax(), Probe(x))
    [message] = [str(w.message) for w in caught if "no gradient" in str(w.message)]
    assert "['1']" in message and "max-pooling or ReLU" in message and "such groups" in message
