"""A small in-context tabular learner (TabPFN-like, newuser103's trial): ``forward(x_q, x_ctx, y_ctx)`` attends from
each query to the labelled context rows only (never to the other queries), so the queries are independent samples
given their context. Episodes batched: ``x_q [B, Q, D]``, ``x_ctx [B, K, D]``, ``y_ctx [B, K]`` -> ``[B, Q, C]``;
one episode unbatched: ``x_q [Q, D]``, ``x_ctx [K, D]``, ``y_ctx [K]`` -> ``[Q, C]`` (the queries are the samples)."""

from __future__ import annotations

import torch
from torch import nn


class InContext(nn.Module):
    def __init__(self, features: int = 4, classes: int = 3, width: int = 8) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # the same weights every time, the caller's global RNG left as it was
            torch.manual_seed(0)
            self.x, self.y = nn.Linear(features, width), nn.Embedding(classes, width)
            self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
            self.head = nn.Linear(width, classes)

    def forward(self, x_q: torch.Tensor, x_ctx: torch.Tensor, y_ctx: torch.Tensor) -> torch.Tensor:
        one = x_q.dim() == 2
        if one:  # one episode: its queries are the samples, the context read whole by each
            x_q, x_ctx, y_ctx = x_q[:, None], x_ctx.expand(len(x_q), *x_ctx.shape), y_ctx.expand(len(x_q), len(y_ctx))
        q = self.x(x_q)
        h, _ = self.attn(q, self.x(x_ctx) + self.y(y_ctx), self.x(x_ctx))
        out = self.head(torch.tanh(h + q))
        return out[:, 0] if one else out


def episodes(n: int, queries: int = 5, context: int = 6, features: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` episodes, each ``context`` labelled rows and ``queries`` query rows (labels ``y_q``)."""
    g = torch.Generator().manual_seed(seed)
    return {"x_ctx": torch.randn(n, context, features, generator=g), "y_ctx": torch.randint(0, 3, (n, context), generator=g),
            "x_q": torch.randn(n, queries, features, generator=g), "y_q": torch.randint(0, 3, (n, queries), generator=g)}
