"""The shared in-context test model builds the same weights every time without reseeding its caller's global RNG
(final_read_A 8: `torch.manual_seed(0)` in its `__init__` reseeded every test that built it)."""

import torch

from tests.helpers.in_context import InContext


def test_in_context_leaves_the_global_rng_and_builds_the_same_weights():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = InContext()
    torch.testing.assert_close(torch.rand(3), expected)
    for a, b in zip(first.state_dict().values(), InContext().state_dict().values()):
        torch.testing.assert_close(a, b)
