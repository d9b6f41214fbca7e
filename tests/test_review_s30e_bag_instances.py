"""Review of f388481e (newuser58's note): InputEffectAudit reads a bag of K instances of F features, [B, K, F], as a
signal of K channels over F steps, so its card named instance 4's group "4 at steps 0–63, channels 4–4". docs/your_model.md
gives the way out, one group per instance with its name: the card then names the instances, and each group's effect is
that of replacing the whole instance by the baseline (checked by hand against the model's outputs)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.summary import markdown_summary

K, F = 5, 64


class Bag(nn.Module):
    """A bag classifier: each instance encoded alone, mean-pooled over the bag."""

    def __init__(self):
        super().__init__()
        self.enc, self.head = nn.Linear(F, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.enc(x)).mean(1))


def test_one_group_per_instance_names_the_instances():
    torch.manual_seed(0)
    model, x = Bag().eval(), torch.randn(16, K, F)
    probe = Probe(x, torch.randint(0, 2, (16,)))
    plain = markdown_summary(0, [InputEffectAudit().run(model, probe)], 0)
    assert "at steps" in plain and "channels" in plain  # the signal's words, as the docs say
    audit = InputEffectAudit(feature_mask=torch.arange(K)[:, None].expand(K, F),
                             feature_names=[f"instance {k}" for k in range(K)])
    result = audit.run(model, probe)
    card = markdown_summary(0, [result], 0)
    assert "instance 4" in card and "at steps" not in card
    rows = {r["feature"]: r["mean_abs_effect"] for r in result.tables["top_groups"]}
    assert len(rows) == K
    with torch.no_grad():  # by hand: instance k set to the baseline 0 in every bag, the target class's logit moved
        out = model(x)
        target = out.argmax(1)
        for k in range(K):
            cut = x.clone()
            cut[:, k] = 0.0
            moved = (model(cut) - out).gather(1, target[:, None]).abs().mean()
            if f"instance {k}" in rows:
                assert abs(rows[f"instance {k}"] - float(moved)) < 1e-5
