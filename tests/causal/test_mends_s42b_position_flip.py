"""A node attribute flipped at every position of [N, T, F] with the padding given as attention_mask: the suggested
counterfactual keeps the padded nodes from the mask (CallableCounterfactual(per_position=True)), not from a rule read
from the features, (x != 0).any(-1), which left unflipped a real node whose features are all 0."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.scm import AttributeFlip, CallableCounterfactual
from lightning_causal.causal.scm.fairness import counterfactual_inputs


class Nodes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, attention_mask):
        return (self.lin(x) * attention_mask[..., None]).sum(1)


def _graphs():
    x = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # node 1 real with all-zero features
                      [[3.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    return x, mask


def flip(x):
    return torch.cat([x[..., :2], 1 - x[..., 2:]], -1)


def test_per_position_flip_keeps_padding_from_the_mask_and_flips_an_all_zero_real_node():
    x, mask = _graphs()
    pad = padding_positions(x, {"attention_mask": mask}, model=Nodes())
    x_cf = counterfactual_inputs(CallableCounterfactual(flip, per_position=True), x, pad)
    assert x_cf[0, 1].tolist() == [0.0, 0.0, 1.0]  # the real all-zero node flipped
    assert torch.equal(x_cf[:, 2], x[:, 2])  # padded nodes as in x
    assert x_cf[1, 1].tolist() == [1.0, 1.0, 1.0] and x_cf[0, 0].tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="per_position=True"):  # without it, a write into padding is refused, naming it
        counterfactual_inputs(CallableCounterfactual(flip), x, pad)
    with pytest.raises(TypeError, match="per_position"):
        CallableCounterfactual(flip, per_position=1)


def test_the_refusal_of_a_column_on_positions_suggests_the_mask_not_a_rule_on_the_features():
    x, mask = _graphs()
    audit = FairnessAudit(AttributeFlip(2))
    with pytest.raises(ValueError) as err:
        audit.validate(Nodes(), Probe(x, torch.tensor([0, 1]), {"attention_mask": mask}))
    said = str(err.value)
    assert "per_position=True" in said and "attention_mask" in said
    # the rule read from the features only as the way out for a model that reads its padding so, no mask (mends_s42f)
    assert said.index("attention_mask") < said.index("(x != 0)") and "reads its padding from the features" in said


def test_fairness_audit_runs_the_suggested_counterfactual_on_padded_graphs():
    torch.manual_seed(0)
    x, mask = _graphs()
    model = Nodes().eval()
    audit = FairnessAudit(CallableCounterfactual(flip, per_position=True))
    probe = Probe(x, torch.tensor([0, 1]), {"attention_mask": mask})
    audit.validate(model, probe)
    result = audit.run(model, probe)
    with torch.no_grad():  # by hand: node 1 of graph 0 flipped too, the padded node 2 not
        x_cf = x.clone()
        x_cf[:, :2, 2] = 1 - x[:, :2, 2]
        delta = (model(x_cf, mask).softmax(-1) - model(x, mask).softmax(-1))[:, 1].abs()
    assert result.scalars["cf_changed"] == 1.0
    assert result.scalars["cf_gap"] == pytest.approx(float(delta.mean()), abs=1e-6)
    assert result.scalars["cf_gap_max"] == pytest.approx(float(delta.max()), abs=1e-6)
