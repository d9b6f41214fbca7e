"""A selective scan written in its parallel form (cumulative sums of logs, as hand-written Mamba code does) forms its
hidden states ``[N, T, D, S]`` in functional code, in a layout no module says; an ``nn.Identity`` on them was read with
the default units, dimension 1, which there holds the token positions: ``unit_effects`` returned one "unit" per position
(``[N, 12]``), silently, where the same model's loop form (its state ``[N, D, S]`` at each step) gives one per channel
``D``. Such an output, dimension 1 as long as the token ids an embedding read, is now refused as features-last ones
are, naming the embedding and the way out; ``unit_dim=2`` gives the loop form's channel effects."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import unit_effects


class _Scan(nn.Module):
    """Token ids -> embedding -> input-dependent step Δ -> h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t ⊗ B (d=4 channels,
    s=3 states) -> the last token's logits. ``parallel``: h for every step at once (``[N, T, D, S]``, ``self.states``);
    else a loop over time, ``self.step`` at each step on ``[N, D, S]``."""

    def __init__(self, parallel: bool):
        super().__init__()
        torch.manual_seed(0)
        self.parallel = parallel
        self.emb, self.dt = nn.Embedding(10, 4), nn.Linear(4, 4)
        self.A, self.B = nn.Parameter(-torch.rand(4, 3) - 0.5), nn.Parameter(torch.randn(3))
        self.states, self.step = nn.Identity(), nn.Identity()
        self.head = nn.Linear(4, 2)

    def forward(self, ids):
        x = self.emb(ids)
        delta = F.softplus(self.dt(x))[..., None]  # [N, T, D, 1]
        u = delta * x[..., None] * self.B  # [N, T, D, S]
        if self.parallel:
            log_a = (delta * self.A).cumsum(1)
            h = self.states(torch.exp(log_a) * torch.cumsum(torch.exp(-log_a) * u, 1))
        else:
            h, hs = torch.zeros_like(u[:, 0]), []
            for t in range(ids.shape[1]):
                h = self.step(torch.exp(delta[:, t] * self.A) * h + u[:, t])
                hs.append(h)
            h = torch.stack(hs, 1)
        return self.head(h[:, -1].sum(-1))


def test_positions_of_a_scan_state_are_not_its_default_units():
    ids = torch.randint(0, 10, (5, 12), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"(?s)'states'.*\[1, 12, 4, 3\].*12 token positions.*'emb'.*unit_dim="):
        unit_effects(_Scan(True).double(), ids, "states", target=0)
    channels = unit_effects(_Scan(True).double(), ids, "states", target=0, unit_dim=2)
    loop = unit_effects(_Scan(False).double(), ids, "step", target=0)  # one call a step, each channel set at every one
    assert channels.shape == loop.shape == (5, 4)
    torch.testing.assert_close(channels, loop)



def test_a_chunked_scans_output_names_its_features():
    class Chunked(_Scan):  # a scan's output in two chunks of 6 steps, joined: [N, T, 6] of a layout no module says
        def forward(self, ids):
            x = torch.cat([self.emb(ids), self.emb(ids)[..., :2]], -1)
            y = self.step(torch.cat([torch.tanh(x[:, :6]), torch.tanh(2 * x[:, 6:])], 1))
            return self.head(y[:, -1, :4] * y[:, -1, 4:].sum(-1, keepdim=True))

    ids = torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"\[1, 12, 6\].*'emb'.*`unit_dim=-1` for its 6 features"):
        unit_effects(Chunked(False), ids, "step", target=0)
    assert unit_effects(Chunked(False), ids, "step", target=0, unit_dim=-1).shape == (3, 6)
