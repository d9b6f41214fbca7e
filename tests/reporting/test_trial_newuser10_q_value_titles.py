"""Sobol' indices of a Q-value with the actions named (newuser10 DQN trial): SobolAudit(target=1,
probability=False, class_names=["left", "right"]) decomposes Q(s, right), but its interval figure was titled
'indices of output 1': the name given was dropped for a raw output (a probability's title, 'P(class 'right')',
used it). A raw output with a name is now 'output 'right''; without one the titles stay as they were."""

import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.reporting.map_data import explained_quantity
from lightning_causal.reporting.tensorboard import _interval_figure


def test_sobol_of_a_named_q_value_is_titled_with_the_action():
    torch.manual_seed(0)
    q = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    r = SobolAudit(n=64, n_bootstrap=10, target=1, probability=False, class_names=["left", "right"]).run(q, Probe(torch.randn(32, 4)))
    fig = _interval_figure(r, "indices", r.tables["indices"])
    assert fig._suptitle.get_text().startswith("sobol: indices of output 'right'")


def test_raw_outputs_without_names_keep_their_titles():
    assert explained_quantity({"target": 0, "explained": "raw output"}) == "the output"
    assert explained_quantity({"target": 2, "explained": "raw output", "outputs": 3}) == "output 2"
    assert explained_quantity({"target": 0, "explained": "raw output"}, lambda c: str(c)) == "the output"  # MapData without names
    assert explained_quantity({"target": 1, "explained": "raw output", "outputs": 2}, lambda c: ["'a'", "'b'"][c]) == "output 'b'"
