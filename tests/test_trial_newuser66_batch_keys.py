"""Mapping batches whose keys name forward's parameters, {"pixels", "input_ids", "attention_mask", "label"} beside
forward(pixels) or a CLIP-like forward(pixels, input_ids, attention_mask): the default reads `input_ids` as the input,
and its warning proposed passing `pixels` as a keyword beside it (`forward() got multiple values for argument
'pixels'`, or an unexpected keyword for forward(pixels)). The warning now passes forward's keys in its order
(newuser66's trial, /tmp/newuser66/c1.py, cb.py)."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.batches import forward_keys, unread_keys_message


def batch(n=8):
    g = torch.Generator().manual_seed(0)
    return {"pixels": torch.rand(n, 1, 4, 4, generator=g), "input_ids": torch.randint(1, 7, (n, 3), generator=g),
            "attention_mask": torch.ones(n, 3, dtype=torch.long), "label": torch.arange(n) % 3}


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

    def forward(self, pixels):
        return self.net(pixels)


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.embed = nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), nn.Embedding(7, 4)

    def forward(self, pixels, input_ids, attention_mask):
        text = (self.embed(input_ids) * attention_mask[..., None]).sum(1)
        return F.cosine_similarity(self.image(pixels), text)[:, None]  # each image against its own caption


def test_forward_keys():
    b = batch()
    assert forward_keys(Head().forward, b) == ["pixels"]
    assert forward_keys(TwoTower().forward, b) == ["pixels", "input_ids", "attention_mask"]
    assert forward_keys(lambda input_ids, attention_mask=None: None, b) is None  # the default's own call
    assert forward_keys(lambda pixels, boxes: None, b) is None  # a parameter the batch has not
    assert forward_keys(None, b) is None and forward_keys(Head().forward, torch.zeros(2)) is None


@pytest.mark.parametrize("model, unpack", [
    (Head, "unpack_batch=lambda batch: (batch['pixels'], batch['label'], None)`"),
    (TwoTower, "unpack_batch=lambda batch: ((batch['pixels'], batch['input_ids'], batch['attention_mask']), "
               "batch['label'], None)`, and `explain='pixels'`"),
])
def test_warning_passes_forward_keys_and_its_fix_runs(model, unpack):
    torch.manual_seed(0)
    m = model().eval()
    b = batch()
    data = DataLoader([{k: v[i] for k, v in b.items()} for i in range(8)], batch_size=4)  # a dataset of mapping samples
    with warnings.catch_warnings(record=True) as seen, pytest.raises(MisconfigurationException, match="is rejected by the model"):
        warnings.simplefilter("always")
        audit_model(m, [InputEffectAudit(ace_values=None)], data, probe_size=8)
    said = [str(w.message) for w in seen if "besides the inputs 'input_ids'" in str(w.message)]
    assert len(said) == 1 and unpack in said[0] and "'pixels': batch['pixels']" not in said[0]
    fix = eval(unpack.split("=", 1)[1].split("`")[0])  # noqa: S307 - the warning's own lambda
    explain = "pixels" if model is TwoTower else None
    results = audit_model(m, [InputEffectAudit(ace_values=None)], data, probe_size=8, unpack_batch=fix, explain=explain)
    assert results[0].scalars["mean_abs_effect"] > 0


def test_message_without_forward_is_as_before():
    b = {"x": torch.zeros(2, 3), "meta": torch.zeros(2, 5), "y": torch.zeros(2)}
    said = unread_keys_message(b, None, "The batches", "the audits", forward=lambda x, meta: None)
    assert "{'meta': batch['meta']}" in said  # x is the default's input: its fix stays


def test_repair_of_two_towers_names_the_zero_shot_classifier():
    from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule, Trigger

    trigger = Trigger(torch.zeros(1, 4, 4), 1.0, target=0)
    with pytest.raises(MisconfigurationException, match="for a CLIP-like two-tower model, its zero-shot classifier"):
        CausalRepairModule(TwoTower(), [BackdoorSuppressionTerm(trigger)], explain="pixels")
