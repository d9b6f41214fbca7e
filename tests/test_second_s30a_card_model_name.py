"""Review of 51783a27: ``markdown_summary(model=)`` and ``TensorBoardRenderer.render(model=)`` took any value for the
network's name: the module itself, which an argument named ``model`` invites (``render(..., model=net)``), put its
whole ``repr``, one line per submodule, between the card's backticks, a card whose ``Model:`` line broke over many
lines. Both now refuse a ``model`` that is neither ``None`` nor a ``str``, naming the argument, what is allowed and the
type given; ``render`` before it writes anything."""

import pytest
from torch import nn

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import TensorBoardRenderer
from lightning_causal.reporting.summary import markdown_summary
from tests.test_leftovers_s30c_summary_stage import _Writer

REFUSAL = ("Expected argument `model` to be None or a str, the network's name as the JSON report's \"model\" gives it "
           "(the module's class: 'Linear'), but got Sequential")


def test_the_module_itself_is_refused():
    r, net = AuditResult("ie", scalars={"z": 1.0}), nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(TypeError) as err:  # before: 'Model: `Sequential(' and 4 more lines of the repr
        markdown_summary(3, [r], model=net)
    assert str(err.value) == REFUSAL
    writer = _Writer()
    with pytest.raises(TypeError) as err:
        TensorBoardRenderer().render(writer, 3, [r], None, model=net)
    assert str(err.value) == REFUSAL and writer.calls == []  # nothing written before the refusal


def test_a_name_and_none_give_their_cards():
    r = AuditResult("ie", scalars={"z": 1.0})
    assert markdown_summary(3, [r], model="Sequential").splitlines()[2] == "Model: `Sequential`"
    assert "Model:" not in markdown_summary(3, [r], model=None)
