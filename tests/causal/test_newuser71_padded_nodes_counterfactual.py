"""Counterfactuals of padded graphs (molecules): node features ``[N, max_nodes, F]`` with one-hot atom types, padded
nodes all zero and marked by the forward argument ``attention_mask``. The search was refused with 'one-hot columns
... holds [0.0, ...]' for the padded nodes' all-zero groups (no molecule with fewer atoms than the largest could be
explained); padded nodes are padding now: never changed, never checked, and the real nodes' groups stay one-hot."""

import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import counterfactual_explanation

TYPES, FEAT, NODES = 3, 4, 5  # one-hot types 0..2, then a continuous feature


class DenseGNN(nn.Module):
    """Masked message passing and a masked mean readout: class 1 scores atoms of type 1 bonded to type 2."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(FEAT, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.1], [-1.0, 2.0, 1.0, 0.0]]))
            self.lin.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x, adj, attention_mask):
        m = attention_mask.to(x.dtype)[..., None]
        h = (x + adj @ x) * m
        return self.lin(h.sum(1) / m.sum(1))


def _molecules() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    types = torch.tensor([[0, 0, 0, -1, -1], [0, 0, 0, 0, -1], [0, 0, 0, 0, 0]])
    mask = (types >= 0).long()
    x = torch.zeros(3, NODES, FEAT)
    x[..., :TYPES] = nn.functional.one_hot(types.clamp(min=0), TYPES).float() * mask[..., None]
    x[..., TYPES] = 0.3 * mask
    chain = torch.diag(torch.ones(NODES - 1), 1)
    adj = (chain + chain.T).expand(3, NODES, NODES) * mask[:, :, None] * mask[:, None, :]
    return x, adj, mask


GROUPS = [[j * FEAT + k for k in range(TYPES)] for j in range(NODES)]  # each node's one-hot type


def test_padded_nodes_are_neither_checked_nor_changed():
    x, adj, mask = _molecules()
    model = DenseGNN().eval()
    assert (model(x, adj, mask).argmax(1) == 0).all()
    cf = counterfactual_explanation(model, x, 1, categorical=GROUPS,
                                    additional_forward_args={"adj": adj, "attention_mask": mask})
    assert cf.success.all()
    pad = mask == 0
    assert (cf.counterfactuals[pad] == x[pad]).all()  # no atom appears at a padded node
    types = cf.counterfactuals[..., :TYPES][~pad]
    assert ((types == 0) | (types == 1)).all() and (types.sum(-1) == 1).all()  # real atoms stay one atom type
    assert (cf.predicted == 1).all()


def test_positional_mask_and_audit():
    x, adj, mask = _molecules()
    model = DenseGNN().eval()
    cf = counterfactual_explanation(model, x, 1, categorical=GROUPS, additional_forward_args=(adj, mask))
    assert cf.success.all() and (cf.counterfactuals[mask == 0] == 0).all()
    audit = CounterfactualAudit(categorical=GROUPS)
    probe = Probe(x, torch.ones(3, dtype=torch.long), additional_forward_args=(adj, mask))
    audit.validate(model, probe)
    result = audit.run(model, probe)
    assert result.scalars["success_rate"] == 1.0


class NodeMaskGNN(DenseGNN):
    def forward(self, x, adj, node_mask):  # a mask of another name: not read as padding
        return super().forward(x, adj, node_mask)


def test_unpadded_all_zero_group_still_refused():
    x, adj, mask = _molecules()
    model = NodeMaskGNN().eval()
    try:
        counterfactual_explanation(model, x, 1, categorical=GROUPS, additional_forward_args=(adj, mask))
    except ValueError as err:
        assert "one-hot" in str(err)
    else:
        raise AssertionError("an all-zero group outside padding must stay refused")
