"""CounterfactualAudit(towards="runner_up") (newuser10 DQN trial): a Q-network has no true classes, its
predicted class is the greedy action, and the question is what change of the state would flip it. The audit
explained only misclassified samples towards their labels and refused a probe without labels ('needs probe
labels (the true classes to explain towards); got none'); labels of the actions taken (epsilon-greedy) made
'misclassified' mean 'greedy differs from the action the exploration drew'. ``towards="runner_up"`` explains the
first ``max_samples`` samples towards the class of their second-highest output, without labels."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.summary import markdown_summary


def _linear_q() -> nn.Linear:
    """Q(s) = W s + b for 2 actions: Q_1 - Q_0 = (w_1 - w_0) . s + (b_1 - b_0) = 2 s_2 - 0.5 s_0 + 0.1."""
    q = nn.Linear(4, 2)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[0.25, 0.0, -1.0, 0.0], [-0.25, 0.0, 1.0, 0.0]]))
        q.bias.copy_(torch.tensor([-0.05, 0.05]))
    return q


def test_runner_up_flips_the_greedy_action_with_the_smallest_change_and_needs_no_labels():
    states = torch.tensor([[0.0, 1.0, 0.3, -2.0], [0.2, 0.0, -0.4, 1.0], [1.0, 0.0, 0.1, 0.0]])
    q = _linear_q()
    gap = 2 * states[:, 2] - 0.5 * states[:, 0] + 0.1  # Q_1 - Q_0: 0.7, -0.8, -0.2: actions 1, 0, 0
    with pytest.raises(ValueError, match=r"needs probe labels.*towards=\"runner_up\""):
        CounterfactualAudit().run(q, Probe(states))  # the default still explains misclassified samples, saying the way
    r = CounterfactualAudit(towards="runner_up", settings=CounterfactualSettings(l1=1.0, l2=0.0),
                            feature_names=["x", "x_dot", "theta", "theta_dot"], class_names=["left", "right"]).run(q, Probe(states))
    rows = r.tables["counterfactuals"]
    assert [row["predicted"] for row in rows] == [1, 0, 0] and [row["target"] for row in rows] == [0, 1, 1]
    assert all(row["success"] and row["counterfactual_predicted"] == row["target"] for row in rows)
    assert "label" not in rows[0] and "misclassified_rate" not in r.scalars and r.scalars["explained"] == 3
    # L1-smallest flip of a linear score: only theta (|dgap/dtheta| = 2, the largest), by the gap over 2 and at most the
    # hinge's margin 0.1 more; x (slope 0.5) and the velocities (slope 0) stay
    for row, g in zip(rows, gap.tolist()):
        change = float(row["changes"].split("theta: ")[1])
        assert row["changes"].startswith("theta: ") and "," not in row["changes"]
        assert -g / 2 - 0.05 - 1e-3 <= change <= -g / 2 + 1e-3 if g > 0 else -g / 2 - 1e-3 <= change <= -g / 2 + 0.05 + 1e-3
    assert "#0 right → left: theta: -0.3" in markdown_summary(0, [r])


def test_runner_up_of_three_actions_is_the_second_highest_q_value():
    q = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    states = torch.tensor([[2.0, 1.0], [0.5, 1.0], [-2.0, -1.5]])  # Q: (2, 1, -3), (0.5, 1, -1.5), (-2, -1.5, 3.5)
    rows = CounterfactualAudit(towards="runner_up", max_samples=2).run(q, Probe(states)).tables["counterfactuals"]
    assert [(row["index"], row["predicted"], row["target"]) for row in rows] == [(0, 0, 1), (1, 1, 0)]  # max_samples: first two
    assert all(row["counterfactual_predicted"] == row["target"] for row in rows)


def test_towards_is_validated():
    with pytest.raises(ValueError, match=r"`towards` to be one of \['label', 'runner_up'\] but got 'greedy'"):
        CounterfactualAudit(towards="greedy")


def test_the_figure_of_runner_up_counterfactuals_says_what_they_flip_and_names_no_label():
    from lightning_causal.reporting.tensorboard import _counterfactual_figure

    states = torch.tensor([[0.0, 1.0, 0.3, -2.0], [0.2, 0.0, -0.4, 1.0]])
    r = CounterfactualAudit(towards="runner_up", class_names=["left", "right"]).run(_linear_q(), Probe(states))
    fig = _counterfactual_figure(r, columns=4)
    assert " ".join(fig._suptitle.get_text().split()) == (
        "counterfactual: smallest changes flipping each sample's predicted class to its runner-up")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["pred 'right'\n→ cf 'left' ✓", "pred 'left'\n→ cf 'right' ✓"]
