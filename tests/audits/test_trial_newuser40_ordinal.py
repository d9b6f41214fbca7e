"""An ordinal head (CORAL: K - 1 cumulative logits, trained with BCE on ``rank > k``) and a discrete-time survival
model (interval hazards) return outputs whose largest is no rank and whose softmax is no probability. The model
says so (it holds ``nn.BCEWithLogitsLoss``) while its probe's labels are ranks ``[N]``: before
:func:`~lightning_causal.audits.label_task.level_outputs`, CounterfactualAudit counted 90 % of a trained CORAL
model's probe as misclassified (argmax of the cumulative logits, rank 0 nearly everywhere), FairnessAudit compared
their softmax and the effect audits and SobolAudit explained the largest logit, all silently."""

import math

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, FairnessAudit, InputEffectAudit, SobolAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import level_outputs
from lightning_causal.causal import AttributeFlip

THRESHOLDS = torch.tensor([-1.5, -0.5, 0.5, 1.5])  # 5 ranks from the score 1.5 x0 + 0.7 x1


class Coral(nn.Module):
    """Cumulative logits ``score - threshold_k`` of the planted score: the exact CORAL model of the data."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(5, 1, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[1.5, 0.7, 0.0, 0.0, 0.0]]))
        self.loss = nn.BCEWithLogitsLoss()  # trained on the levels rank > k

    def forward(self, x):
        return self.score(x) - THRESHOLDS


def _probe(n: int = 64) -> Probe:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    x[:, 4] = (x[:, 4] > 0).float()  # a planted sensitive column, no effect on the rank
    ranks = torch.bucketize(1.5 * x[:, 0] + 0.7 * x[:, 1], THRESHOLDS)
    return Probe(x, ranks.clamp(max=3))  # ranks 0..3 fit the 4 outputs: the callback's range check passes them


def expected_rank(out):
    return torch.sigmoid(out).sum(1, keepdim=True)


def test_counterfactual_and_fairness_warn_about_cumulative_logits():
    model, probe = Coral().eval(), _probe()
    with pytest.warns(UserWarning, match=r"(?s)CounterfactualAudit.*cumulative logits.*sigmoid\(out\)\.sum\(1"):
        CounterfactualAudit().validate(model, probe)
    with pytest.warns(UserWarning, match=r"(?s)FairnessAudit.*no probability of a rank.*output="):
        FairnessAudit(AttributeFlip(4)).validate(model, probe)


class OneVsRest(nn.Module):
    """A classifier of 4 classes trained one-vs-rest (BCE on F.one_hot(y)): each output its class's logit, the largest
    its class; its probe's labels are class indices [N], as an ordinal head's ranks are."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        with torch.no_grad():  # class = 2 (x1 > 0) + (x0 > 0): logit of class c = s0 x0 + s1 x1, signs of c's bits
            self.fc.weight.copy_(torch.tensor([[-1.0, -1, 0, 0, 0], [1, -1, 0, 0, 0], [-1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]))
            self.fc.bias.zero_()
        self.loss = nn.BCEWithLogitsLoss()

    def forward(self, x):
        return self.fc(x)


def test_a_one_vs_rest_classifier_is_audited_and_told_how_to_say_so(recwarn):
    """Its labels look like ranks (a held BCE loss, labels [N] beyond 0/1), so the audits warn, naming
    `output=lambda out: out`; they refused it before, though its largest output is its class (every probe sample
    classified right here). With that `output=` they run silently."""
    model, x = OneVsRest().eval(), _probe().inputs
    probe = Probe(x, 2 * (x[:, 1] > 0).long() + (x[:, 0] > 0).long())
    assert torch.equal(model(x).argmax(1), probe.labels)
    with pytest.warns(UserWarning, match=r"(?s)one-vs-rest classifier.*`output=lambda out: out`"):
        CounterfactualAudit().validate(model, probe)
    with pytest.warns(UserWarning, match=r"(?s)one-vs-rest classifier.*`output=lambda out: out`"):
        FairnessAudit(AttributeFlip(4)).validate(model, probe)
    recwarn.clear()
    result = CounterfactualAudit(max_samples=2, output=lambda out: out).run(model, probe)
    assert result.scalars["misclassified_rate"] == 0.0
    assert not [w for w in recwarn if "one-vs-rest" in str(w.message)]


def test_effects_and_sobol_warn_about_the_largest_cumulative_logit():
    model, probe = Coral().eval(), _probe()
    with pytest.warns(UserWarning, match="no rank"):
        InputEffectAudit(ace_values=None).run(model, probe)
    with pytest.warns(UserWarning, match="no probability of a rank"):
        SobolAudit(64, target=0, n_bootstrap=10).run(model, probe)


def test_expected_rank_matches_the_planted_score_and_says_nothing(recwarn):
    """The documented way: the expected rank (a callable ``output=``, labels left out) is neither warned about nor
    refused, and its effects follow the planted score: features 2 to 4 have exactly none, feature 0 more than 1."""
    model, probe = Coral().eval(), _probe()
    unlabelled = Probe(probe.inputs, None)
    result = InputEffectAudit(output=expected_rank, ace_values=None).run(model, unlabelled)
    effect = result.vectors["mean_abs_effect"]
    assert torch.allclose(effect[2:], torch.zeros(3), atol=1e-6)
    assert effect[0] > effect[1] > 0
    # a hand-computed sample: do(x0 := 0) on x = (1, 0, ...) moves the expected rank by E(1.5) - E(0)
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    from lightning_causal.causal import input_effects
    e = input_effects(model, x, torch.arange(5), output=expected_rank)
    assert torch.allclose(e[0, 0], torch.sigmoid(1.5 - THRESHOLDS).sum() - torch.sigmoid(-THRESHOLDS).sum(), atol=1e-6)
    assert not [w for w in recwarn if "no rank" in str(w.message)]


def test_no_false_alarm_for_multi_label_recipes():
    """A multi-label model's binary recipe (labels y[:, k], 0/1) and a callable ``output=`` are not per-level logits."""
    model = Coral()
    assert level_outputs(torch.tensor([0, 1, 1, 0]), torch.zeros(4, 2), model) is None  # two logits of label k
    assert level_outputs(torch.tensor([0, 3, 2]), torch.zeros(3, 5), model, output=lambda o: o) is None
    assert level_outputs(torch.tensor([[0, 1], [1, 1]]), torch.zeros(2, 2), model) is None  # multi-hot
    assert level_outputs(torch.tensor([0, 3, 2]), torch.zeros(3, 4), nn.Linear(5, 4)) is None  # says nothing
    assert level_outputs(torch.tensor([0.0, 3.0, 2.0]), torch.zeros(3, 4), model) is not None  # float ranks too


def test_an_infinite_label_is_no_rank():
    """Float labels holding inf were read as whole numbers and the message's int(inf) raised OverflowError out of
    CounterfactualAudit.validate; inf is no class: the audit's own refusal of float labels names them."""
    assert level_outputs(torch.tensor([0.0, 3.0, math.inf]), torch.zeros(3, 4), Coral()) is None
    probe = _probe()
    labels = probe.labels.float()
    labels[0] = math.inf
    with pytest.raises(ValueError, match="needs integer class labels"):
        CounterfactualAudit().validate(Coral().eval(), Probe(probe.inputs, labels))


def test_corn_heads_expected_rank_is_named_and_documented():
    """CORN's logits are conditional (rank > k given rank > k - 1): the expected rank is the sum of the cumulative
    products of their sigmoids, not of the sigmoids (CORAL's). Conditional probabilities 0.8, 0.5, 0.25 give
    P(rank > k) = 0.8, 0.4, 0.1, the ranks 0..3 at 0.2, 0.4, 0.3, 0.1 and the expected rank 1.3 (CORAL's formula: 1.55).
    The warning's ways out and docs/your_model.md's table both named CORAL's formula only."""
    import pathlib
    import re

    from lightning_causal.audits.label_task import LEVEL_WAYS_OUT

    out = torch.logit(torch.tensor([[0.8, 0.5, 0.25]]))
    named = re.search(r"CORN.*?`output=(lambda out: [^`]+)`", LEVEL_WAYS_OUT)
    table = pathlib.Path(__file__).parents[2] / "docs" / "your_model.md"
    row = re.search(r"\| expected rank \(CORN\) \| `(lambda out: [^`]+)` \|", table.read_text())
    assert named is not None and row is not None
    for formula in (named.group(1), row.group(1)):
        assert torch.allclose(eval(formula)(out), torch.tensor([[1.3]]))


def test_the_survival_output_has_finite_gradients_where_a_hazard_saturates():
    """Survival to interval t, prod_{j <= t} (1 - sigmoid(h_j)), was named log1p(-sigmoid(h)).sum().exp(): a hazard logit
    of 20 rounds sigmoid to 1 in float32, log1p(-1) = -inf, and its gradient is NaN (inf * 0), which poisons Captum's
    gradient methods beside the audits. -softplus(h) is log(1 - sigmoid(h)) with finite gradients; on moderate logits
    the value is the product by hand: hazards 0.5 and 0.2 survive to interval 1 with 0.5 * 0.8 = 0.4."""
    import pathlib
    import re

    from lightning_causal.audits.label_task import LEVEL_WAYS_OUT

    named = re.search(r"survival to interval t of a model of interval hazards \(`output=(lambda out: [^`]+)`", LEVEL_WAYS_OUT)
    table = pathlib.Path(__file__).parents[2] / "docs" / "your_model.md"
    row = re.search(r"\| survival to interval `t`[^|]*\| `(lambda out: [^`]+)` \|", table.read_text())
    assert named is not None and row is not None
    for formula in (named.group(1), row.group(1)):
        survival = eval(formula, {"torch": torch, "t": 1})  # survival to interval 1
        moderate = torch.logit(torch.tensor([[0.5, 0.2, 0.9]]))
        assert torch.allclose(survival(moderate), torch.tensor([[0.4]]))
        saturated = torch.tensor([[20.0, -3.0, 1.0]], requires_grad=True)
        survival(saturated).sum().backward()
        assert bool(saturated.grad.isfinite().all())
