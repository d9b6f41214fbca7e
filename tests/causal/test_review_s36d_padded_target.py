"""Review of warn_padded_target (53cbe018, ecbae1f8, f0f66d54): a listwise ranker's padded item explained.

Two gaps mended: the list mask passed under the common name `mask` (or torch's `key_padding_mask`, 1 = padding) was
no padding to the check, so `target=None` explained a padded item in 12 of 16 lists in silence; and the check's pass
of the lists cut by one position drew from the global random streams, so a model that draws noise in eval mode (MC
dropout) got another counterfactual when the warning ran than the same search without it. Guards beside them: a
classifier of as many classes as positions (pooled, or a Linear over the flattened positions, which refuses the cut)
is never warned about, and nothing of the model is changed.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import counterfactual_explanation, input_effects, unit_effects
from lightning_causal.causal.engine import padded_reads
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.padded_reads import warn_padded_target

N, T, D = 8, 5, 3


def _lists():
    lengths = torch.tensor([5, 2, 3, 5, 4, 2, 5, 3])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    x = -(torch.arange(N * T * D, dtype=torch.float).view(N, T, D) % 7 + 1) / 7  # every real item scores below 0
    return x * mask[..., None], mask


class Scorer(nn.Module):
    """one score per item, padded items (zero features) left unmasked: they score 0, above every real item."""

    def __init__(self, noise=False):
        super().__init__()
        self.noise = noise
        self.h = nn.Linear(D, 4)
        self.out = nn.Linear(4, 1)
        with torch.no_grad():
            self.h.weight.fill_(1.0), self.h.bias.zero_(), self.out.weight.fill_(1.0), self.out.bias.zero_()

    def scores(self, x):
        h = self.h(x)
        return self.out(F.dropout(h, 0.2, training=True) if self.noise else h).squeeze(-1)


class MaskScorer(Scorer):
    def forward(self, x, mask):
        return self.scores(x)


class KeyPaddingScorer(Scorer):
    def forward(self, x, key_padding_mask):
        return self.scores(x)


class AttentionScorer(Scorer):
    def forward(self, x, attention_mask):
        return self.scores(x)


class FlatClassifier(nn.Module):
    """T classes from a Linear over the flattened positions: it takes T positions only."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(T * D, T)
        with torch.no_grad():
            self.head.weight.copy_(torch.linspace(-1, 1, T * T * D).view(T, T * D)), self.head.bias.zero_()

    def forward(self, x, mask):
        return self.head((x * mask[..., None]).flatten(1))


class PooledClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(D, T)

    def forward(self, x, mask):
        m = mask[..., None].float()
        return self.head((x * m).sum(1) / m.sum(1))


def _said(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught if "mark as padding" in str(w.message)]


@pytest.mark.parametrize("model, key, way", [(MaskScorer(), "mask", "name the parameter `attention_mask`"),
                                             (KeyPaddingScorer(), "key_padding_mask", "attention_mask=~key_padding_mask")])
def test_a_padded_item_under_a_mask_of_another_name_is_warned_of(model, key, way):
    x, mask = _lists()
    m = mask if key == "mask" else mask == 0
    model.eval()
    top = model(x, m).argmax(1)
    assert (mask.gather(1, top[:, None]) == 0).sum() == 5  # lists 1, 2, 4, 5, 7: a padded item is largest
    kw = {"additional_forward_args": {key: m}}
    _, said = _said(lambda: input_effects(model, x, **kw))
    assert len(said) == 1 and "probe sample(s) [1, 2, 4, 5, 7]" in said[0] and "unmasked" in said[0], said
    assert f"read from the forward argument {key!r}" in said[0] and way in said[0]
    _, said = _said(lambda: unit_effects(model, x, "h", unit_dim=-1, **kw))
    assert len(said) == 1 and f"{key!r}" in said[0]
    _, said = _said(lambda: input_effects(model, x, additional_forward_args=(m,)))  # positional: named by position
    assert len(said) == 1 and "the positional forward argument 0" in said[0]


@pytest.mark.parametrize("model", [FlatClassifier(), PooledClassifier()])
def test_a_classifier_of_as_many_classes_as_positions_under_mask_is_not_warned_of(model):
    x, mask = _lists()
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for target in (None, T - 1):  # T - 1: a padded position in lists 1, 2, 4, 5, 7
        _, said = _said(lambda t=target: input_effects(model, x, target=t, additional_forward_args={"mask": mask}))
        assert said == []
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model.head._forward_hooks


def test_the_check_pass_leaves_the_random_streams_as_they_were():
    x, mask = _lists()
    model = AttentionScorer(noise=True).eval()  # MC dropout kept on in eval mode
    forward = Forward(model, additional_forward_args={"attention_mask": mask}, num_samples=N)
    with torch.no_grad():
        out = AttentionScorer().eval()(x, mask)
    torch.manual_seed(0)
    _, said = _said(lambda: warn_padded_target(forward, (x,), out, out.argmax(1), "check"))
    assert len(said) == 1  # the cut pass ran
    after = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(4))


def test_a_noisy_models_counterfactual_is_the_same_whether_the_check_ran(monkeypatch):
    x, mask = _lists()
    model = AttentionScorer(noise=True).eval()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    torch.manual_seed(1)
    checked, said = _said(lambda: counterfactual_explanation(model, x, T - 1, **kw))
    assert len(said) == 1
    monkeypatch.setattr(padded_reads, "_follows_positions", lambda *a, **k: True)  # the decision, without its pass
    torch.manual_seed(1)
    unchecked, _ = _said(lambda: counterfactual_explanation(model, x, T - 1, **kw))
    assert torch.equal(checked.counterfactuals, unchecked.counterfactuals)


class ItemIds(nn.Module):
    """a list of item ids [N, L] -> one score per item [N, L]; the padding id 0 scores 0, above every real item."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, D, padding_idx=0)
        self.out = nn.Linear(D, 1)
        with torch.no_grad():
            self.emb.weight.abs_(), self.out.weight.fill_(-1.0), self.out.bias.zero_()

    def forward(self, ids, attention_mask):
        return self.out(self.emb(ids)).squeeze(-1)


def test_the_first_order_estimates_and_the_input_layer_warn_as_the_exact_effects_do():
    x, mask = _lists()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    _, said = _said(lambda: input_effects(AttentionScorer().eval(), x, method="attribution", **kw))
    assert len(said) == 1 and "probe sample(s) [1, 2, 4, 5, 7]" in said[0], said
    ids = (torch.arange(N * T).view(N, T) % 19 + 1) * mask
    _, said = _said(lambda: input_effects(ItemIds().eval(), ids, input_layer="emb", **kw))
    assert len(said) == 1 and "probe sample(s) [1, 2, 4, 5, 7]" in said[0], said
