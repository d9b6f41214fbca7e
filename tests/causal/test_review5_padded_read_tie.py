"""warn_padded_read (5d52189) gave the advice for a padded position other than the last (``out[:, 0]``
under left padding) whenever the explained output equalled more than the last position: a
position-free per-token model (a convolution over token embeddings) gives equal outputs at
padded positions holding the same pad token, so ``out[:, -1]`` on right padding equalled positions
[4, 5] and the warning spoke of left padding. The last position among those read is a read at the last
position."""

import warnings

import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.padded_reads import PADDED_READ_FIX, warn_padded_read


class _Tagger(nn.Module):
    """One score per token from its embedding alone ``[N, T]``: equal at equal tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(20, 4), nn.Linear(4, 1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids)).squeeze(-1)


def test_a_last_position_read_tied_with_other_pads_gets_the_right_padding_advice():
    torch.manual_seed(0)
    ids = torch.randint(1, 20, (3, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 6, dtype=torch.long)
    mask[0, -2:] = 0
    forward = Forward(_Tagger().eval(), output=lambda out: out[:, -1], additional_forward_args={"attention_mask": mask * 1},
                      num_samples=3)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        warn_padded_read(forward, (ids * mask,), "input_effects")
    (message,) = [str(w.message) for w in caught]
    assert "position(s) [5]," in message and "right padding read at the last position" in message  # ties told apart
    assert message.endswith(PADDED_READ_FIX)
