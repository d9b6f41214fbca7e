"""One group per element on a long signal (trial newuser6, audio): a second of 16 kHz audio ``[N, 1, 16000]``
with the audits' default groups took 200 s on a CPU for the callback's 2-sample check at set-up alone
(hours per audit epoch), with no word of why. The audits that intervene on input groups now warn at
``validate`` (before any pass) when the default gives more than ``MANY_GROUPS`` groups per sample, naming a
grouping for the shape, which then passes without the warning."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, InputEffectAudit, LayerMapAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.input_effects import MANY_GROUPS


class Refuses(nn.Module):
    """A model no pass may reach: the warning must come before any."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x):
        raise AssertionError("a pass ran before the warning")


def _audits(**kwargs):
    return [InputEffectAudit(**kwargs), CaptumBaseline(("Saliency",), **kwargs), LayerMapAudit(layers=["conv"], **kwargs)]


def test_a_second_of_audio_with_default_groups_is_warned_of_with_windows_that_then_pass():
    x = torch.randn(2, 1, 16000)
    for audit in _audits():
        with pytest.warns(UserWarning, match=r"16000 groups.*windows of 250 steps") as caught:
            audit.validate(Refuses(), Probe(x))
        fix = re.search(r"feature_mask=(\(torch.arange.*?\.reshape\(1, 1, 16000\))", str(caught[0].message)).group(1)
        mask = eval(fix, {"torch": torch})  # noqa: S307 - the message's own code
        assert int(mask.max()) + 1 == 64 and mask.shape == (1, 1, 16000)
    for audit in _audits(feature_mask=mask):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            audit.validate(Refuses(), Probe(x))


def test_large_images_are_told_a_patch_size_and_small_inputs_or_token_ids_are_not_warned_of():
    with pytest.warns(UserWarning, match=r"150528 groups.*`patch_size=14` \(about 256 groups\)"):
        InputEffectAudit().validate(Refuses(), Probe(torch.rand(2, 3, 224, 224)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InputEffectAudit().validate(Refuses(), Probe(torch.randn(2, 1, MANY_GROUPS)))  # at the limit
        InputEffectAudit().validate(Refuses(), Probe(torch.rand(2, 1, 28, 28)))  # 784 pixels: one group each
        InputEffectAudit().validate(Refuses(), Probe(torch.randint(0, 9, (2, 8000))))  # tokens: each is a group
        InputEffectAudit(patch_size=14).validate(Refuses(), Probe(torch.rand(2, 3, 224, 224)))


def test_a_32x32_rgb_image_is_told_a_patch_size():
    # 3,072 groups a sample: a LayerMapAudit of 64 rows took about 60 s of CPU (benchmarks/RESULTS.md, layermap_speed)
    with pytest.warns(UserWarning, match=r"3072 groups.*`patch_size=2` \(about 256 groups\)"):
        InputEffectAudit().validate(Refuses(), Probe(torch.rand(2, 3, 32, 32)))
