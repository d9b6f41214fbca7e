"""one_hot_blocks finds every one-hot block at once (what InputEffectAudit and SobolAudit check on
every tabular probe): the same blocks as one_hot_block column by column, without its O(N D) per
column (18 s for a 256 x 2000 binary probe, a bag of words, before every audit run)."""

import time

import torch

from lightning_causal import SobolAudit
from lightning_causal.audits.input_effects import warn_one_hot_interventions
from lightning_causal.causal.scm.attribute_flip import one_hot_block, one_hot_blocks


def _mixed(g: torch.Generator) -> torch.Tensor:
    n = int(torch.randint(2, 40, (1,), generator=g))
    parts = []
    for _ in range(int(torch.randint(1, 5, (1,), generator=g))):
        kind = int(torch.randint(0, 5, (1,), generator=g))
        if kind == 0:
            parts.append(torch.randn(n, 1, generator=g))
        elif kind == 1:
            parts.append((torch.rand(n, 1, generator=g) < 0.5).float())
        elif kind == 2:
            k = int(torch.randint(2, 5, (1,), generator=g))
            parts.append(torch.nn.functional.one_hot(torch.randint(0, k, (n,), generator=g), k).float())
        else:
            parts.append(torch.full((n, 1), float(kind == 3)))  # a column of ones or of zeros
    return torch.cat(parts, 1)


def test_the_same_blocks_as_one_hot_block_column_by_column() -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        x = _mixed(g)
        expected = {tuple(sorted([c, *one_hot_block(x, c)])) for c in range(x.shape[1])
                    if one_hot_block(x, c) and bool((x[:, c] == 1).any())}
        assert set(map(tuple, one_hot_blocks(x))) == expected
    x = torch.cat([torch.randn(8, 1), torch.nn.functional.one_hot(torch.arange(8) % 3, 3).float()], 1)
    assert one_hot_blocks(x) == [[1, 2, 3]] and one_hot_blocks(x, max_columns=2) == []


def test_the_audits_check_a_wide_binary_probe_quickly() -> None:
    x = (torch.rand(256, 2000, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    groups = torch.arange(2000).unsqueeze(0)
    start = time.perf_counter()
    warn_one_hot_interventions("InputEffectAudit 'input_effect'", x, groups, 0.0, None)
    SobolAudit(n=64)._warn_one_hot(x, groups)
    assert time.perf_counter() - start < 5.0  # column by column: over 30 s
