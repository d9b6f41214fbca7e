"""A listwise ranker's scores [N, L] explained at a padded item (newuser79's trial).

Lists of L items padded to L, one score per item, the padding given as `attention_mask`: where the
model leaves padded items' scores unmasked (the mask only in its loss), `target=None` picked a padded
item in every list whose real items scored below 0, and `target=k` explained item k in lists shorter
than k, all in silence (NaN effects where the model scores padding -inf). The estimators warn now,
naming the samples and positions; a masked ranker, and a classifier of as many classes as items, are
not warned about.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import input_effects, unit_effects

L = 4


class Ranker(nn.Module):
    """score of an item = x0 + x1 through a linear layer; `fill`: the padded items' score, or unmasked."""

    def __init__(self, fill=None):
        super().__init__()
        self.fill = fill
        self.h = nn.Linear(2, 2)
        self.out = nn.Linear(2, 1)
        with torch.no_grad():
            self.h.weight.copy_(torch.eye(2)), self.h.bias.zero_()
            self.out.weight.fill_(1.0), self.out.bias.zero_()

    def forward(self, x, attention_mask):
        s = self.out(self.h(x)).squeeze(-1)  # [N, L]
        return s if self.fill is None else s.masked_fill(attention_mask == 0, self.fill)


class PooledClassifier(nn.Module):
    """L classes from the mean of the real items: its width does not follow the items."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, L)
        with torch.no_grad():
            self.head.weight.copy_(4 - torch.arange(2 * L, dtype=torch.float).view(L, 2)), self.head.bias.zero_()

    def forward(self, x, attention_mask):
        m = attention_mask[..., None].float()
        return self.head((x * m).sum(1) / m.sum(1))


def _lists():
    lengths = torch.tensor([4, 2, 3, 4])
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    x = -torch.arange(1, 1 + 4 * L * 2, dtype=torch.float).view(4, L, 2) / 10  # every real item scores below 0
    return x * mask[..., None], mask


def _padding_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught if "mark as padding" in str(w.message)]


def test_unmasked_scores_explained_at_a_padded_item_are_warned_of():
    x, mask = _lists()
    model = Ranker().eval()
    assert (model(x, mask).argmax(1) == torch.tensor([0, 2, 3, 0])).all()  # lists 1 and 2: a padded item is largest
    kw = {"additional_forward_args": {"attention_mask": mask}}
    _, said = _padding_warnings(lambda: input_effects(model, x, **kw))
    assert len(said) == 1 and "probe sample(s) [1, 2] is position(s) [2, 3]" in said[0], said
    assert "unmasked" in said[0] and "masked_fill(attention_mask == 0" in said[0]
    _, said = _padding_warnings(lambda: unit_effects(model, x, "h", unit_dim=-1, **kw))
    assert len(said) == 1 and "Intervening on 'h'" in said[0] and "[1, 2]" in said[0], said
    _, said = _padding_warnings(lambda: InputEffectAudit(ace_values=None).run(model, Probe(x, additional_forward_args={"attention_mask": mask})))
    assert len(said) == 1 and "[1, 2]" in said[0] and "unmasked" in said[0], said  # the audit resolves target=None itself


@pytest.mark.parametrize("fill", [-1e4, float("-inf")])
def test_a_masked_ranker_is_warned_of_only_where_target_names_a_padded_item(fill):
    x, mask = _lists()
    model = Ranker(fill=fill).eval()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    effects, said = _padding_warnings(lambda: input_effects(model, x, **kw))
    assert said == [] and torch.isfinite(effects).all()
    effects, said = _padding_warnings(lambda: input_effects(model, x, target=2, **kw))
    assert len(said) == 1 and "probe sample(s) [1] is position(s) [2]" in said[0] and "`target=` names them" in said[0]
    assert torch.isfinite(effects[[0, 2, 3]]).all()  # the real rows; row 1's (NaN under -inf) is what is warned of
    _, said = _padding_warnings(lambda: input_effects(model, x, target=1, **kw))
    assert said == []


def test_a_classifier_of_as_many_classes_as_items_is_not_warned_of():
    x, mask = _lists()
    model = PooledClassifier().eval()
    targets = model(x, mask).argmax(1)
    assert (mask.gather(1, targets[:, None]) == 0).any()  # a class index at a padded position, by chance
    _, said = _padding_warnings(lambda: input_effects(model, x, additional_forward_args={"attention_mask": mask}))
    assert said == []


def test_the_causal_graph_and_the_layer_map_warn_of_a_padded_top_item_too():
    from lightning_causal.causal import causal_graph, layer_causal_map

    x, mask = _lists()
    model = Ranker().eval()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    _, said = _padding_warnings(lambda: causal_graph(model, x, ["h"], unit_dim=-1, **kw))
    assert len(said) == 1 and said[0].startswith("A causal graph") and "[1, 2]" in said[0], said
    _, said = _padding_warnings(lambda: layer_causal_map(model, x, layers=["h", "out"], **kw))
    assert len(said) >= 1 and any(s.startswith("A layer causal map") and "[1, 2]" in s for s in said), said


def test_a_counterfactual_towards_a_padded_item_is_warned_of():
    from lightning_causal.audits import CounterfactualAudit
    from lightning_causal.causal import counterfactual_explanation

    x, mask = _lists()
    model = Ranker().eval()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    _, said = _padding_warnings(lambda: counterfactual_explanation(model, x, 3, **kw))  # item 3: padding of list 1 and 2
    assert len(said) == 1 and "The counterfactual search" in said[0] and "[1, 2]" in said[0], said
    assert "`target_class=` names them" in said[0]
    _, said = _padding_warnings(lambda: counterfactual_explanation(model, x, 1, **kw))  # real in every list
    assert said == []
    probe = Probe(x, torch.tensor([0, 1, 0, 1]), additional_forward_args={"attention_mask": mask})
    _, said = _padding_warnings(lambda: CounterfactualAudit(towards="runner_up").run(model, probe))
    # runner-ups behind a padded top item: padding too, said in the audit's words (towards=, not target_class=)
    assert any(s.startswith("CounterfactualAudit") and 'towards="runner_up"' in s for s in said), said
