"""InputEffectAudit's ``top_groups`` rows of an image name where each group is (the newuser19 trial: a CI
gate reading the report got a patch index and no patch grid, so "which pixels is group 5" needed the
patch size and the image width re-derived by hand)."""

from __future__ import annotations

import torch

from lightning_causal.audits import InputEffectAudit, Probe


def _linear(shape):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(shape).prod()), 2))


def test_each_top_patch_says_its_rows_and_columns():
    x = torch.randn(4, 3, 6, 8)  # patches of 3: 2 rows x 3 columns of patches, the last column 2 wide
    rows = InputEffectAudit(patch_size=3, top_k=6, ace_values=None).run(_linear((3, 6, 8)), Probe(x)).tables["top_groups"]
    assert len(rows) == 6
    for row in rows:
        r, c = divmod(row["group"], 3)  # the patch grid, row-major
        assert row["rows"] == [3 * r, 3 * r + 3] and row["cols"] == [3 * c, min(3 * c + 3, 8)] and "channels" not in row


def test_a_group_of_some_channels_says_which():
    x = torch.randn(4, 3, 6, 8)
    mask = torch.arange(3).view(1, 3, 1, 1).expand(1, 3, 6, 8)  # one group per colour channel
    rows = InputEffectAudit(feature_mask=mask, top_k=3, ace_values=None).run(_linear((3, 6, 8)), Probe(x)).tables["top_groups"]
    assert {row["group"]: (row["rows"], row["cols"], row["channels"]) for row in rows} == {
        g: ([0, 6], [0, 8], [g, g + 1]) for g in range(3)}


def test_tabular_rows_and_masks_per_sample_have_no_region():
    x = torch.randn(5, 4)
    rows = InputEffectAudit(top_k=2, ace_values=None).run(_linear((4,)), Probe(x)).tables["top_groups"]
    assert all(row.keys() == {"group", "mean_abs_effect", "mean_effect"} for row in rows)
    per_sample = lambda inputs: torch.randint(0, 2, (inputs.shape[0], 1, 6, 8), generator=torch.Generator().manual_seed(0))  # noqa: E731
    rows = InputEffectAudit(feature_mask=per_sample, top_k=2, ace_values=None).run(
        _linear((1, 6, 8)), Probe(torch.randn(3, 1, 6, 8))).tables["top_groups"]
    assert all("rows" not in row for row in rows)


def test_the_text_card_says_where_a_top_patch_is():
    from lightning_causal.reporting import markdown_summary

    x = torch.randn(4, 3, 6, 8)
    r = InputEffectAudit(patch_size=3, top_k=2, ace_values=None).run(_linear((3, 6, 8)), Probe(x))
    row = r.tables["top_groups"][0]
    (r0, r1), (c0, c1) = row["rows"], row["cols"]
    assert f"top_groups: {row['group']} at rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1} (mean_abs_effect " in markdown_summary(0, [r])


def test_the_text_card_names_the_channels_of_a_group_of_some_channels():
    from lightning_causal.reporting import markdown_summary

    mask = torch.arange(3).view(1, 3, 1, 1).expand(1, 3, 6, 8)  # one group per colour channel: the same box for each
    r = InputEffectAudit(feature_mask=mask, top_k=1, ace_values=None).run(_linear((3, 6, 8)), Probe(torch.randn(4, 3, 6, 8)))
    g = r.tables["top_groups"][0]["group"]
    assert f"top_groups: {g} at rows 0–5, cols 0–7, channels {g}–{g} (mean_abs_effect " in markdown_summary(0, [r])
