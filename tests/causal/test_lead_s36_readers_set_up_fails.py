"""embedding_readers and its watch leave nothing behind when setting them up fails part-way (the lead, session 36).

Before, the embeddings' pre-hooks were registered before the ``_Lookups`` watch was entered, outside the ``try`` that
removes them, and the watch wrapped the fast-path modules' ``forward`` before entering the mode: a failure in between
left the hooks on the model, or the wrapped ``forward`` on ``nn.MultiheadAttention``, for every later training step.
"""

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lightning_causal.causal.engine import token_ids


class _CodesBeside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(4, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8 + 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.emb(x[:, 0].long()).unsqueeze(1)
        a, _ = self.attn(e, e, e)
        return self.head(torch.cat([a[:, 0], x[:, 1:]], 1))


def _probe() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randint(0, 4, (16, 1), generator=g).float(), torch.randn(16, 2, generator=g)], 1)


def test_a_watch_that_fails_to_start_leaves_no_embedding_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _CodesBeside().eval()

    def fails(self):  # noqa: ANN001, ANN202
        raise RuntimeError("watch failed to start")

    monkeypatch.setattr(token_ids._Lookups, "__enter__", fails)
    with pytest.raises(RuntimeError, match="watch failed to start"):
        with token_ids.embedding_readers(model, (_probe(),)):
            pass
    assert not model.emb._forward_pre_hooks


def test_a_mode_that_fails_to_enter_leaves_no_wrapped_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _CodesBeside().eval()

    def fails(self):  # noqa: ANN001, ANN202
        raise RuntimeError("mode failed to enter")

    monkeypatch.setattr(TorchFunctionMode, "__enter__", fails)
    with pytest.raises(RuntimeError, match="mode failed to enter"):
        with token_ids.embedding_readers(model, (_probe(),)):
            pass
    assert "forward" not in model.attn.__dict__
    assert not model.emb._forward_pre_hooks


def test_readers_still_find_the_code_column() -> None:
    model = _CodesBeside().eval()
    x = _probe()
    with torch.no_grad(), token_ids.embedding_readers(model, (x,)) as readers:
        model(x)
    assert [r.columns for r in readers] == [(0,)]
    assert not model.emb._forward_pre_hooks and "forward" not in model.attn.__dict__
