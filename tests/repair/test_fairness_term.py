"""CounterfactualFairnessTerm: values, gradients (gradcheck), autocast, a fine-tune that lowers the gap."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.causal.scm.fairness import counterfactual_fairness_gap
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.repair.fairness import DEFAULT_FAIRNESS_WEIGHT, CounterfactualFairnessTerm


@pytest.fixture(scope="module")
def data():
    return make_synthetic_fairness(512, seed=3)


class _Functional(nn.Module):
    """``x @ w.T``, with ``w`` a plain tensor so gradcheck can treat it as an input."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.w[:, :-1].T + self.w[:, -1])


def test_abs_prob_equals_the_audited_gap(data):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    term = CounterfactualFairnessTerm(data.scm, "a")
    gap = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"))
    assert float(term.loss(model, data.x, None).detach()) == pytest.approx(gap["mean_abs"], rel=1e-5)


def test_sym_kl_equals_hand_formula(data):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x = data.x[:50]
    x_cf = data.scm.flip("a").flip_counterfactual(x)
    p, q = model(x).softmax(1), model(x_cf).softmax(1)
    expected = 0.5 * ((p * (p / q).log()).sum(1) + (q * (q / p).log()).sum(1)).mean()
    value = CounterfactualFairnessTerm(data.scm, "a", distance="sym_kl").loss(model, x, None)
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-5)


def test_single_logit_models_and_flip_counterfactual(data):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x = data.x[:40]
    loss = CounterfactualFairnessTerm(AttributeFlip(0)).loss(model, x, None)
    x_cf = AttributeFlip(0).flip_counterfactual(x)
    with torch.no_grad():
        expected = (torch.sigmoid(model(x)) - torch.sigmoid(model(x_cf))).abs().mean()
    torch.testing.assert_close(loss.detach(), expected)


@pytest.mark.parametrize("classes", [1, 2, 3])
@pytest.mark.parametrize("distance", ["abs_prob", "sym_kl"])
def test_gradient_flows_gradcheck_float64(data, distance, classes):
    x = data.x[:12].double()
    term = CounterfactualFairnessTerm(data.scm, "a", distance=distance)
    w = torch.randn(classes, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: term.loss(_Functional(w), x, None), (w,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("shape", [(30,), (30, 1), (30, 2), (30, 3)])
def test_abs_prob_is_half_the_l1_distance_of_the_class_probabilities(shape):
    g = torch.Generator().manual_seed(1)
    out, out_cf = torch.randn(shape, generator=g) * 3, torch.randn(shape, generator=g) * 3
    if len(shape) == 1 or shape[1] == 1:  # one logit: p = (1 − σ, σ)
        p, q = (torch.stack([1 - torch.sigmoid(o.reshape(-1)), torch.sigmoid(o.reshape(-1))], 1) for o in (out, out_cf))
    else:
        p, q = out.softmax(1), out_cf.softmax(1)
    expected = 0.5 * (p - q).abs().sum(1).mean()
    term = CounterfactualFairnessTerm(AttributeFlip(0))
    torch.testing.assert_close(term.loss_from_outputs(out, out_cf, None), expected, atol=1e-6, rtol=1e-6)
    # the first rows only when the extra outputs cover a fraction of the batch
    torch.testing.assert_close(term.loss_from_outputs(out, out_cf[:10], None), 0.5 * (p[:10] - q[:10]).abs().sum(1).mean(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="outputs \\[N\\] or \\[N, C\\]"):
        term.loss_from_outputs(out.reshape(2, 15, -1), out_cf.reshape(2, 15, -1), None)


def test_term_is_differentiable_under_bf16_autocast(data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    term = CounterfactualFairnessTerm(data.scm, "a")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = term.loss(model, data.x[:64], None)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # the counterfactual itself is computed in float32 outside autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_cf = term.counterfactual_batch(data.x[:64])
    torch.testing.assert_close(x_cf, data.scm.flip("a").flip_counterfactual(data.x[:64]))


def test_short_seeded_fine_tune_lowers_the_gap(data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):  # unfair fit: the label depends on a
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x), data.y).backward()
        opt.step()
    before = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"))["mean_abs"]
    term = CounterfactualFairnessTerm(data.scm, "a")
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(data.x), data.y) + term.weight_at(0) * term.loss(model, data.x, data.y)
        loss.backward()
        opt.step()
    after = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"))["mean_abs"]
    assert before > 0.05 and after < 0.3 * before


def test_bad_arguments_raise_clear_errors(data):
    with pytest.raises(ValueError, match="`distance` to be one of \\('abs_prob', 'sym_kl', 'logit'\\)"):
        CounterfactualFairnessTerm(data.scm, "a", distance="l2")
    with pytest.raises(ValueError, match="one of \\['a', 'm1', 'm2', 'x3'\\], but got 'sex'"):
        CounterfactualFairnessTerm(data.scm, "sex")
    with pytest.raises(ValueError, match="`weight`"):
        CounterfactualFairnessTerm(data.scm, "a", weight=-1.0)
    with pytest.raises(ValueError, match="flipped column"):
        CounterfactualFairnessTerm(AttributeFlip(0), 2)
    term = CounterfactualFairnessTerm(data.scm, "a")
    with pytest.raises(ValueError, match="only the values \\(0.0, 1.0\\)"):
        term.loss(nn.Linear(4, 2), data.x + 0.25, None)
    with pytest.raises(ValueError, match="same shape"):
        CounterfactualFairnessTerm(lambda x: x[:, :2], 0).loss(nn.Linear(4, 2), data.x, None)
    with pytest.raises(ValueError, match="`sensitive` \\(the column to flip\\)"):
        CounterfactualFairnessTerm(data.scm)
    with pytest.raises(ValueError, match="to hold columns, \\[N, D, ...\\].*one sample without its batch dimension is x\\[None\\]"):
        term.loss(nn.Linear(4, 2), data.x[0], None)
    assert term.weight_at(3) == DEFAULT_FAIRNESS_WEIGHT and term.name == "counterfactual_fairness"


def test_fraction_penalises_the_first_rows_only(data):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = data.x[:40]
    half = CounterfactualFairnessTerm(data.scm, "a", fraction=0.5)
    assert half.extra_inputs(x).shape == (20, 4)
    gap = counterfactual_fairness_gap(model, x[:20], data.scm.flip("a"))
    assert float(half.loss(model, x, None).detach()) == pytest.approx(gap["mean_abs"], rel=1e-5)
    with pytest.raises(ValueError, match="`fraction` to be a number in \\(0.0, 1.0\\]"):
        CounterfactualFairnessTerm(data.scm, "a", fraction=0.0)


def test_a_callable_that_edits_its_argument_in_place_sees_a_copy(data):
    """``def cf(x): x[:, 0] = 1 - x[:, 0]; return x`` gave a gap and a loss of 0 (x_cf was x) and
    flipped the caller's rows."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = data.x[:64].clone()
    before = x.clone()

    def in_place(rows):
        rows[:, 0] = 1 - rows[:, 0]
        return rows

    expected = CounterfactualFairnessTerm(AttributeFlip(0)).loss(model, x, None)
    assert float(expected.detach()) > 0
    torch.testing.assert_close(CounterfactualFairnessTerm(in_place, sensitive=0).loss(model, x, None), expected)
    assert counterfactual_fairness_gap(model, x, in_place)["mean_abs"] == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(x, before)


def test_callables_are_not_fused_only_flips_of_a_binary_column_are(data):
    """A callable may leave rows unchanged (do(race := 2) on a row of race 2): fusing it paired those
    rows with themselves and, under dropout, penalised them."""
    assert CounterfactualFairnessTerm(AttributeFlip(0)).fusable
    assert CounterfactualFairnessTerm(data.scm, "a").fusable
    assert not CounterfactualFairnessTerm(lambda x: x, sensitive=0).fusable
