"""Review of 7e24f9a1: ClassProbability keeps what SobolAudit's softmax warnings read (the first 64 explained rows and
its first call's return value), but it kept the first call's whole return value and views of its explained output: a
language model's logits [M, T, V] behind ``output=lambda out: out["logits"][:, -1]`` and its cache stayed alive through
the analysis (6.8 MB in a small SobolAudit, 200 MB for a function called once on 256 rows). The return value is kept
only where a distribution is in it (the check of a continuous distribution's moment reads it); the rows kept are copies."""

import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal.causal.sensitivity.samplers import KEPT_ROWS, ClassProbability


class _LM(nn.Module):  # token ids -> logits [N, T, V] and a cache beside them
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(50, 16), nn.Linear(16, 300)

    def forward(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.emb(ids)
        return {"logits": self.head(h), "cache": h.unsqueeze(1).repeat(1, 6, 1, 4)}


def _bytes_held(*objects: object) -> int:
    seen: dict[int, int] = {}

    def walk(obj: object) -> None:
        if isinstance(obj, torch.Tensor):
            seen.setdefault(obj.untyped_storage().data_ptr(), obj.untyped_storage().nbytes())
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (tuple, list)):
            for v in obj:
                walk(v)
    for obj in objects:
        walk(obj)
    return sum(seen.values())


def test_the_kept_rows_hold_no_more_than_their_own_values() -> None:
    f = ClassProbability(_LM().eval(), 3, output=lambda out: out["logits"][:, -1])
    ids = torch.randint(0, 50, (256, 12), generator=torch.Generator().manual_seed(1))
    p = f(ids)
    f(ids[:8])
    assert p.shape == (256,) and f.first_outputs.shape == (KEPT_ROWS, 300)
    torch.testing.assert_close(f.first_outputs, _LM().eval()(ids[:KEPT_ROWS])["logits"][:, -1])
    assert f.first_return[0] is None  # no distribution: the checks read nothing else of the return value
    assert _bytes_held(f.first_return, f.first_outputs) <= 2 * KEPT_ROWS * 300 * 4  # not the [256, 12, 300] logits


def test_a_distribution_is_kept_for_the_checks_of_its_moments() -> None:
    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mu = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> dict[str, object]:
            return {"dist": Normal(self.mu(x), 1.0), "value": x.sum(1)}

    f = ClassProbability(Policy().eval(), 0, output=lambda out: out["dist"].mean)
    f(torch.randn(5, 4))
    raw, picked = f.first_return
    assert isinstance(raw["dist"], Normal) and torch.equal(raw["dist"].mean, picked)
