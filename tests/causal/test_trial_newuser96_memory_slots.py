"""Which memory slots a kNN classifier's prediction reads (docs/your_model.md, 'Memory banks and retrieval'): an
``nn.Identity`` named on the similarities ``[N, Q]`` makes each slot a unit, and ``SetTo(-1e4)`` on it ranks the slot
below every other, as removing it from the bank does: the unit effects equal a hand loop that deletes each slot's key
and label and reruns the model (trial newuser96), also through ``UnitImportanceAudit``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import SetTo, unit_effects

Q, D, H, C = 24, 4, 8, 3


class _SlotKNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head, self.read = nn.Linear(D, H), nn.Linear(H, C), nn.Identity()
        self.register_buffer("keys", F.normalize(torch.randn(Q, H), dim=1))
        self.register_buffer("labels", torch.arange(Q) % C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.enc(x), dim=1)
        s, i = self.read(z @ self.keys.T).topk(4, dim=1)  # one unit per memory slot
        p_knn = torch.zeros(x.shape[0], C).scatter_add(1, self.labels[i], (s / 0.1).softmax(1))
        return (0.5 * p_knn + 0.5 * self.head(z).softmax(1)).log()


def test_a_slots_unit_effect_is_the_effect_of_removing_it_from_the_bank() -> None:
    torch.manual_seed(0)
    model, x = _SlotKNN().eval(), torch.randn(16, D)
    effects = unit_effects(model, x, "read", intervention=SetTo(-1e4))
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        keys, labels, hand = model.keys, model.labels, []
        for slot in range(Q):
            kept = torch.arange(Q) != slot
            model.keys, model.labels = keys[kept], labels[kept]  # the slot deleted from the bank
            hand.append((out.gather(1, t) - model(x).gather(1, t))[:, 0])
        model.keys, model.labels = keys, labels
    hand = torch.stack(hand, 1)
    assert hand.abs().amax() > 0.05  # some slots matter
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-6)
    result = UnitImportanceAudit(["read"], intervention=SetTo(-1e4)).run(model, Probe(x))
    torch.testing.assert_close(result.vectors["importance/read"], hand.abs().mean(0), rtol=0, atol=1e-6)
