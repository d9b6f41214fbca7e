"""Review of c3f4043c (newuser84's leftovers): under figure_kind="points" a point cloud's groups name ``points``, but
CounterfactualAudit still said a cloud's changes by time step ("step 11 of channel 2", or nothing where the cloud's
shape is no signal's), and a monitor on a point group's Sobol' tag of the version before (``S/7_steps_7-7``) or one
logged without the kind was told only that the tag is not logged (``_axis_renamed`` knew depth <-> frames only). The
callbacks enter both contexts through one, ``figure_axes``, which puts the reading back on an error."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.audits.group_regions import (
    figure_axes,
    point_clouds,
    reading_clips,
    reading_clouds,
)
from lightning_causal.callbacks.monitoring import _now_named
from tests.test_review_s32d_sequence_changes import _OneElement  # class 1 where x[:, i, j] > 0.5


@pytest.mark.parametrize(("shape", "at", "words"), [((32, 3), (20, 2), "coordinate 2 of point 20: +"),  # [N, P, 3]
                                                    ((3, 32), (2, 20), "coordinate 2 of point 20: +"),  # Conv1d's [N, 3, P]
                                                    ((16, 8), (11, 2), "coordinate 2 of point 11: +")])  # no signal's shape
def test_a_clouds_change_is_said_by_point(shape: tuple[int, int], at: tuple[int, int], words: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(6, *shape) * 0.4  # every sample predicted 0, labelled 1
    with point_clouds():
        r = CounterfactualAudit(max_samples=2).run(_OneElement(*at), Probe(x, torch.ones(6, dtype=torch.long)))
    row = r.tables["counterfactuals"][0]
    assert row["success"] and row["changed_elements"] == [at[0] * shape[1] + at[1]]
    assert row["changes"] == f"{words}{row['counterfactual_values'][0] - row['original_values'][0]:.3g}"


@pytest.mark.parametrize(("old", "new"), [("S/7_steps_7-7", "S/7_points_7-7"),
                                          ("S/7_steps_7-7_channels_0-0", "S/7_points_7-7_coordinates_0-0"),
                                          ("S/7_points_7-7", "S/7_steps_7-7"),
                                          ("S/7_points_7-7_coordinates_2-2", "S/7_steps_7-7_features_2-2")])
def test_a_monitor_on_a_point_groups_tag_read_the_other_way_is_told_the_tag_now(old: str, new: str) -> None:
    logged = {f"causal/sobol/{new}", "causal/sobol/S/8_points_8-8", "causal/sobol/S/8_steps_8-8"}
    assert f"monitor 'causal/sobol/{new}'" in _now_named(f"causal/sobol/{old}", logged)
    assert _now_named("causal/sobol/S/9_steps_9-9", logged) == ""  # no such group either way


def test_figure_axes_reads_the_kind_and_puts_it_back_on_an_error() -> None:
    for kind, want in (("points", (True, False)), ("frames", (False, True)), ("image", (False, False)), (None, (False, False))):
        with figure_axes(kind):
            assert (reading_clouds(), reading_clips()) == want
    with pytest.raises(RuntimeError, match="mid-audit"), figure_axes("points"):
        raise RuntimeError("mid-audit")
    assert (reading_clouds(), reading_clips()) == (False, False)
