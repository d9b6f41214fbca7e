"""The advice of a CLIP-like model's refusals works when followed: ``forward(pixels, input_ids)`` fed
``{pixels, input_ids, label}`` by the default ``unpack_batch`` was refused with a denoiser's advice
(``unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)``, which a mapping batch cannot take) beside the right
warning; a dict output without ``'logits'`` suggested ``output='logits_per_image'``, an in-batch score matrix refused
right after."""

import re
import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model


class TwoTower(nn.Module):
    def __init__(self, scores=False):
        super().__init__()
        self.image, self.text, self.scores = nn.Sequential(nn.Flatten(), nn.Linear(12, 8)), nn.EmbeddingBag(50, 8), scores

    def forward(self, pixels, input_ids):
        u, v = self.image(pixels), self.text(input_ids)
        if self.scores:  # the batch's similarity matrix, as a Hugging Face CLIPModel's output
            s = u @ v.T
            return {"logits_per_image": s, "logits_per_text": s.T}
        return (u * v).sum(1, keepdim=True)  # each image against its own caption


def _batch():
    g = torch.Generator().manual_seed(0)
    return {"pixels": torch.randn(6, 3, 2, 2, generator=g), "input_ids": torch.randint(0, 50, (6, 5), generator=g),
            "label": torch.tensor([0, 1, 0, 1, 0, 1])}


def test_the_refusal_of_a_mapping_batch_gives_the_keys_fix_and_it_runs():
    torch.manual_seed(0)
    model, batch = TwoTower().eval(), _batch()
    with warnings.catch_warnings(), pytest.raises(MisconfigurationException, match="is rejected by the model") as caught:
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], batch)
    said = str(caught.value)
    assert "batch[0]" not in said and "timesteps" not in said and "forward(self, input_ids" not in said
    fix = re.search(r"`unpack_batch=(lambda batch: .*?)`, with `explain='pixels'`", said)
    assert fix is not None, said
    results = audit_model(model, [InputEffectAudit(ace_values=None)], batch, unpack_batch=eval(fix.group(1)),  # noqa: S307
                          explain="pixels")
    assert results[0].scalars["mean_abs_effect"] > 0


def test_a_dict_of_square_score_matrices_is_advised_its_diagonal_and_it_runs():
    torch.manual_seed(0)
    model, batch = TwoTower(scores=True).eval(), _batch()
    unpack = lambda b: ((b["pixels"], b["input_ids"]), b["label"], None)  # noqa: E731
    with pytest.raises(MisconfigurationException, match="is misconfigured") as caught:
        audit_model(model, [InputEffectAudit(ace_values=None)], batch, unpack_batch=unpack, explain="pixels")
    said = str(caught.value)
    fix = re.search(r"e\.g\. `output=(lambda out: .*?)`", said)
    assert fix is not None and "logits_per_image" in fix.group(1), said
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = audit_model(model, [InputEffectAudit(ace_values=None, output=eval(fix.group(1)))], batch,  # noqa: S307
                              unpack_batch=unpack, explain="pixels")
    assert results[0].scalars["mean_abs_effect"] > 0
