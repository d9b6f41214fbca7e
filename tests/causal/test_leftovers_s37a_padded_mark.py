"""`first_in_block("padded_target")` marked the padded-target warning as said before its check ran, so a first call
with nothing padded swallowed a later call's warning in the same block: a custom audit run by `audit_model` explaining
position 0 (real in every list) then position 4 (padding in 5 of 8 lists) was told nothing. The mark is now taken only
where the warning is said (`explained_target(once=...)`, `mark_said`)."""

import warnings

import torch

from lightning_causal import audit_model
from lightning_causal.audits import Audit, AuditResult, Probe
from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.batching import remembered_fit
from tests.causal.test_review_s36d_padded_target import MaskScorer, N, _lists


def _said(seen) -> list[str]:
    return [str(w.message) for w in seen if "explained column of probe sample" in str(w.message)]


def _effects(model, x, mask, position: int) -> torch.Tensor:
    return unit_effects(model, x, "h", target=torch.full((x.shape[0],), position), additional_forward_args={"mask": mask},
                        unit_dim=-1)


class _TwoPositions(Audit):
    """An audit of the user's own explaining position 0, then position 4."""

    def run(self, model, probe, *, max_batch_size=None):
        result = AuditResult(self.name)
        for position in (0, 4):
            result.scalars[f"effect_{position}"] = float(_effects(model, probe.inputs, probe.additional_forward_args["mask"],
                                                                  position).abs().mean())
        return result


def test_a_first_call_with_nothing_padded_leaves_a_later_padded_target_warned_about():
    x, mask = _lists()
    model = MaskScorer().eval()
    with warnings.catch_warnings(record=True) as seen, remembered_fit():
        warnings.simplefilter("always")
        _effects(model, x, mask, 0)
        assert not _said(seen)
        _effects(model, x, mask, 4)
    said = _said(seen)
    assert len(said) == 1 and "probe sample(s) [1, 2, 4, 5, 7]" in said[0]


def test_the_padded_target_is_still_said_once_a_block():
    x, mask = _lists()
    model = MaskScorer().eval()
    with warnings.catch_warnings(record=True) as seen, remembered_fit():
        warnings.simplefilter("always")
        _effects(model, x, mask, 4)
        _effects(model, x, mask, 3)
    assert len(_said(seen)) == 1


def test_a_custom_audit_run_by_audit_model_is_told_of_its_padded_target():
    x, mask = _lists()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        audit_model(MaskScorer().eval(), _TwoPositions("two"), Probe(x, None, {"mask": mask}), probe_size=N)
    assert _said(seen)
