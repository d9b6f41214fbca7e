"""warn_padded_read (da296ce) compared a callable ``output=`` with every returned tensor ``[N, T]``
as if dimension 1 were positions: a sentence classifier of as many classes as tokens, explained at
its last class (``out[:, -1]``) on a right-padded probe, was warned of reading a pad position's
prediction. A tensor whose dimension 1 does not follow the input's length (one more pass, cut by one
position) is no per-position output; a per-position score ``[N, T]`` read at ``-1`` is still warned."""

import warnings

import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects


class _Classifier(nn.Module):
    """Masked sum of token embeddings -> 6 class logits (6 = the probe's length)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(20, 4), nn.Linear(4, 6)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head((self.emb(ids) * attention_mask[..., None]).sum(1))


class _PerPosition(nn.Module):
    """One score per position ``[N, T]`` (a value head over token and position embeddings)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.pos, self.head = nn.Embedding(20, 4), nn.Embedding(8, 4), nn.Linear(4, 1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids) + self.pos(torch.arange(ids.shape[1]))).squeeze(-1)


def _probe() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[0, -2:] = 0
    mask[2, -1:] = 0
    return ids * mask, mask


def _padded_warnings(model: nn.Module) -> list[str]:
    torch.manual_seed(0)
    ids, mask = _probe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(model.eval(), ids, baseline=0, output=lambda out: out[:, -1],
                      additional_forward_args={"attention_mask": mask})
    return [str(w.message) for w in caught if "mark as padding" in str(w.message)]


def test_the_last_class_of_as_many_classes_as_positions_is_no_padded_read():
    assert _padded_warnings(_Classifier()) == []


def test_a_per_position_score_read_at_the_last_position_is_still_warned():
    found = _padded_warnings(_PerPosition())
    assert len(found) == 1 and "probe sample(s) [0, 2]" in found[0]
