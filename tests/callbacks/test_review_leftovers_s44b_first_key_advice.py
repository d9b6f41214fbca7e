"""A two-tower model whose first parameter is the key the default ``unpack_batch`` reads, ``forward(input_ids,
pixel_values)`` fed ``{input_ids, pixel_values, labels}``: the default passes ``input_ids`` alone, the model refuses
it, and the refusal gave a denoiser's advice (``unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)``, which a
mapping cannot take) beside the warning's right fix. c359a05d gave the keys' fix only where forward's first parameter
is not the default's input. The refusal now names the ``unpack_batch=`` that passes the missing keys, and it runs."""

import re
import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model


class TextFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.text, self.image = nn.EmbeddingBag(20, 4), nn.Sequential(nn.Flatten(), nn.Linear(12, 4))

    def forward(self, input_ids, pixel_values):
        return (self.text(input_ids) * self.image(pixel_values)).sum(1, keepdim=True)


def test_the_refusal_names_the_missing_keys_and_the_fix_runs():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(0, 20, (6, 5), generator=g), "pixel_values": torch.randn(6, 3, 2, 2, generator=g),
             "labels": torch.zeros(6, dtype=torch.long)}
    model = TextFirst().eval()
    with warnings.catch_warnings(), pytest.raises(MisconfigurationException, match="is rejected by the model") as caught:
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], batch)
    said = str(caught.value)
    assert "batch[0]" not in said and "timesteps" not in said, said
    fix = re.search(r"`unpack_batch=(lambda batch: .*?)`", said)
    assert fix is not None and "pixel_values" in fix.group(1), said
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = audit_model(model, [InputEffectAudit(ace_values=None, baseline=0)], batch,  # token ids: an id baseline
                              unpack_batch=eval(fix.group(1)))  # noqa: S307
    assert results[0].scalars["mean_abs_effect"] > 0
