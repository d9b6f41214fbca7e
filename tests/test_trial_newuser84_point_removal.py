"""The point-removal recipe (docs/recipes.md, point clouds): a padded set model's padded points get no effect, moving
a point to the origin is no removal, and explaining the mask (or, of a max, setting a point to a copy of another)
removes it: each equals the hand loop that sets it, reruns the model and takes the difference."""

from __future__ import annotations

import torch

from tests.helpers.recipes import recipe_code, run_code


def test_removing_a_point_equals_the_hand_loop_and_padded_points_get_no_effect():
    ns = run_code(recipe_code("point-removal"), "point-removal")
    model, points, mask, lengths = ns["model"], ns["points"], ns["mask"], ns["lengths"]
    n, p = mask.shape
    with torch.no_grad():
        clean = model(points, mask)[:, 1]
        by_hand_removed = torch.stack([clean - model(points, mask * (torch.arange(p) != j))[:, 1] for j in range(p)], 1)
        moved_points = [points.clone() for _ in range(p)]
        for j, x in enumerate(moved_points):
            x[:, j] = 0.0
        by_hand_moved = torch.stack([clean - model(x, mask)[:, 1] for x in moved_points], 1)
    padded = mask == 0
    for effect in ("moved", "removed", "copied"):
        assert bool((ns[effect][padded] == 0).all()), effect  # padded points: never set
    torch.testing.assert_close(ns["removed"], by_hand_removed, atol=1e-6, rtol=0)
    torch.testing.assert_close(ns["moved"], by_hand_moved, atol=1e-6, rtol=0)
    torch.testing.assert_close(ns["copied"][:, 1:], by_hand_removed[:, 1:], atol=1e-6, rtol=0)  # a max ignores copies
    octant = ns["octant"]
    with torch.no_grad():  # removing every real point of octant o at once, by hand
        by_hand_octant = torch.stack([clean - model(points, mask * (octant != o))[:, 1] for o in range(8)], 1)
    torch.testing.assert_close(ns["by_octant"], by_hand_octant, atol=1e-6, rtol=0)
    real = ~padded
    assert (ns["moved"] - ns["removed"])[real].abs().max() > 1e-3  # the origin is a real point: moving is no removal
    assert bool((lengths >= 8).all()) and n == 64
