"""leftovers_s30c: ``markdown_summary(stage=)`` took any value: a typo ("fit-end") gave the ordinary card silently.

The text card says an audit at the end of fit only for ``stage="fit_end"``; any other value read as an epoch-end audit.
``markdown_summary`` and ``TensorBoardRenderer.render`` now refuse a stage other than ``"epoch_end"`` and ``"fit_end"``,
naming the argument, the value and what is allowed; ``render`` before it writes anything.
"""

import re

import pytest

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import TensorBoardRenderer
from lightning_causal.reporting.summary import markdown_summary

REFUSAL = "Expected argument `stage` to be one of ['epoch_end', 'fit_end'] but got "


class _Writer:
    """Records every method call of a ``SummaryWriter`` (``add_*``, ``flush``)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append(name)


@pytest.mark.parametrize("stage", ["fit-end", "FIT_END", "", None])
def test_a_stage_of_no_known_moment_is_refused(stage):
    r = AuditResult("ie", scalars={"z": 1.0}, vectors={})
    with pytest.raises(ValueError, match=f"^{re.escape(REFUSAL)}{re.escape(repr(stage))}$"):
        markdown_summary(3, [r], stage=stage)
    writer = _Writer()
    with pytest.raises(ValueError, match=re.escape(REFUSAL)):
        TensorBoardRenderer().render(writer, 3, [r], None, stage=stage)
    assert writer.calls == []  # nothing written before the refusal


def test_the_two_known_stages_give_their_cards():
    r = AuditResult("ie", scalars={"z": 1.0})
    assert markdown_summary(3, [r]).splitlines()[0] == markdown_summary(3, [r], stage="epoch_end").splitlines()[0] == (
        "### Causal audit, epoch 3")
    assert markdown_summary(3, [r], stage="fit_end").splitlines()[0] == "### Causal audit at the end of fit, epoch 3"
    writer = _Writer()
    TensorBoardRenderer().render(writer, 3, [r], None, stage="fit_end")
    assert "add_text" in writer.calls
