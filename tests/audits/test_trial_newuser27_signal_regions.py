"""Where a top group lies in a signal, a volume or a video (trial newuser27: audio, spectrograms, volumes).
InputEffectAudit's ``top_groups`` rows and the text card said where a group is for images ``[N, C, H, W]``
only (9b68004, f776c10): windows of a waveform ``[N, 1, 2000]`` read "top_groups: 8 (...)" with no "samples
800-899", octants of a volume ``[N, 1, 16, 16, 16]`` and frames of a video ``[N, C, T, H, W]`` a bare id too.
Each row now names its box on the input's own axes: ``steps`` (and ``channels``/``features`` where it holds
some only) of a 1-D signal, ``depth``, ``rows``, ``cols`` of a volume or video."""

from __future__ import annotations

import torch

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.reporting import markdown_summary


def _linear(shape, weights):
    """A linear score whose weight on element i is ``weights[i]``: the top group is where the weight is."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(shape).prod()), 1, bias=False))
    model[1].weight.data.copy_(weights.reshape(1, -1))
    return model


def _top(x, mask, weights, top_k=1):
    r = InputEffectAudit(feature_mask=mask, top_k=top_k, ace_values=None, target=0).run(_linear(x.shape[1:], weights), Probe(x))
    return r, r.tables["top_groups"]


def test_a_window_of_a_waveform_names_its_samples():
    x = torch.ones(3, 1, 2000)
    weights = torch.zeros(1, 2000)
    weights[0, 800:900] = 1.0  # the planted window: samples 800-899, window 8 of 20
    r, rows = _top(x, (torch.arange(2000) // 100).reshape(1, 1, 2000), weights)
    assert rows[0]["group"] == 8 and rows[0]["steps"] == [800, 900] and "channels" not in rows[0]
    assert "top_groups: 8 at steps 800–899 (mean_abs_effect 100" in markdown_summary(0, [r])


def test_a_group_of_one_channel_of_a_signal_or_one_feature_of_a_window_says_which():
    x = torch.ones(2, 2, 40)  # channels first [N, C, T]: one group per channel and half
    mask = (torch.arange(2).view(2, 1) * 2 + (torch.arange(40) // 20).view(1, 40)).unsqueeze(0)
    weights = torch.zeros(2, 40)
    weights[1, 20:] = 1.0
    rows = _top(x, mask, weights)[1]
    assert rows[0]["group"] == 3 and rows[0]["steps"] == [20, 40] and rows[0]["channels"] == [1, 2]
    x = torch.ones(2, 40, 3)  # features last [N, T, F] (an LSTM's batch_first window): one group per feature
    weights = torch.zeros(40, 3)
    weights[:, 2] = 1.0
    rows = _top(x, torch.arange(3).expand(1, 40, 3), weights)[1]
    assert rows[0]["group"] == 2 and rows[0]["steps"] == [0, 40] and rows[0]["features"] == [2, 3]


def test_an_octant_of_a_volume_and_a_frame_of_a_video_name_their_box():
    d = torch.arange(16) // 8
    octants = (d.view(-1, 1, 1) * 4 + d.view(1, -1, 1) * 2 + d.view(1, 1, -1)).reshape(1, 1, 16, 16, 16)
    weights = torch.zeros(1, 16, 16, 16)
    weights[0, 2:6, 10:14, 10:14] = 1.0  # a blob in octant 3: depth < 8, rows and cols >= 8
    r, rows = _top(torch.ones(2, 1, 16, 16, 16), octants, weights)
    assert rows[0]["group"] == 3 and (rows[0]["depth"], rows[0]["rows"], rows[0]["cols"]) == ([0, 8], [8, 16], [8, 16])
    assert "top_groups: 3 at depth 0–7, rows 8–15, cols 8–15 (mean_abs_effect 64" in markdown_summary(0, [r])
    weights = torch.zeros(3, 6, 8, 8)
    weights[:, 2] = 1.0  # a video [N, C, T, H, W] of 6 frames: frame 2 decides
    rows = _top(torch.ones(2, 3, 6, 8, 8), torch.arange(6).view(1, 1, 6, 1, 1).expand(1, 3, 6, 8, 8), weights)[1]
    assert rows[0] == {**rows[0], "group": 2, "depth": [2, 3], "rows": [0, 8], "cols": [0, 8]} and "channels" not in rows[0]


def test_an_image_without_channels_says_its_rows_and_columns():
    weights = torch.zeros(28, 28)
    weights[14:21, :7] = 1.0
    rows = _top(torch.ones(2, 28, 28), torch.arange(16).view(4, 4).repeat_interleave(7, 0).repeat_interleave(7, 1), weights)[1]
    assert rows[0]["group"] == 8 and (rows[0]["rows"], rows[0]["cols"]) == ([14, 21], [0, 7])


def test_sobol_rows_and_card_say_where_a_group_lies_too():
    from lightning_causal.audits import SobolAudit

    weights = torch.zeros(1, 2000)
    weights[0, 800:900] = 1.0
    x = torch.rand(16, 1, 2000, generator=torch.Generator().manual_seed(0))
    r = SobolAudit(feature_mask=(torch.arange(2000) // 100).reshape(1, 1, 2000), n=16, top_k=1, probability=False,
                   target=0).run(_linear(x.shape[1:], weights), Probe(x))
    row = r.tables["indices"][0]
    assert row["group"] == 8 and row["steps"] == [800, 900] and row["ST"] > 0.99  # the output is window 8's sum
    assert "indices: 8 at steps 800–899 (ST " in markdown_summary(0, [r])


def test_a_long_features_last_window_is_told_windows_along_its_steps_not_one_group_per_feature():
    """[N, 2000, 3] (an LSTM's batch_first window) was told "windows of 1 steps, `(torch.arange(3) // 1).reshape(1, 1, 3)`
    (3 groups, channels together)": one group per feature, no window at all."""
    import re

    import pytest

    x = torch.randn(2, 2000, 3)
    with pytest.warns(UserWarning, match=r"6000 groups.*windows of 32 steps.*\(63 groups, features together\)") as caught:
        InputEffectAudit().validate(torch.nn.LSTM(3, 4, batch_first=True), Probe(x))
    fix = re.search(r"feature_mask=(\(torch.arange.*?\.reshape\(1, 2000, 1\))", str(caught[0].message)).group(1)
    mask = eval(fix, {"torch": torch})  # noqa: S307 - the message's own code
    assert mask.shape == (1, 2000, 1) and int(mask.max()) + 1 == 63 and mask[0, 31, 0] == 0 and mask[0, 32, 0] == 1
    with pytest.warns(UserWarning, match=r"square patches, `patch_size=7`"):  # [N, H, W]: no axis is time
        InputEffectAudit().validate(torch.nn.Identity(), Probe(torch.randn(2, 100, 100)))
