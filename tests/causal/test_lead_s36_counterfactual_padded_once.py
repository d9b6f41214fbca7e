"""CounterfactualAudit checks a padded target once (the lead, session 36, from a second final read of e235ac9d and
f49b3f28): the audit warned in its own words, then counterfactual_explanation ran the same check and its cut pass
(the lists one position shorter) again, its warning hidden by a filter on its text. One block now: the search's check
is said once a block, and the audit's comes first."""

import warnings

import torch

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import counterfactual_explanation
from tests.causal.test_trial_newuser79_padded_items import L, Ranker, _lists, _padding_warnings


def _cut_passes(model: Ranker, run) -> int:  # noqa: ANN001
    widths = []
    handle = model.h.register_forward_hook(lambda _m, i, _o: widths.append(i[0].shape[1]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
    finally:
        handle.remove()
    return widths.count(L - 1)


def test_the_audit_runs_one_cut_pass_and_says_it_once() -> None:
    x, mask = _lists()
    model = Ranker().eval()
    probe = Probe(x, torch.tensor([0, 1, 0, 1]), additional_forward_args={"attention_mask": mask})
    assert _cut_passes(model, lambda: CounterfactualAudit(towards="runner_up").run(model, probe)) == 1  # before: 2
    _, said = _padding_warnings(lambda: CounterfactualAudit(towards="runner_up").run(model, probe))
    assert len(said) == 1 and said[0].startswith("CounterfactualAudit"), said


def test_the_search_called_alone_still_checks() -> None:
    x, mask = _lists()
    model = Ranker().eval()
    kw = {"additional_forward_args": {"attention_mask": mask}}
    assert _cut_passes(model, lambda: counterfactual_explanation(model, x, 3, **kw)) == 1
    _, said = _padding_warnings(lambda: counterfactual_explanation(model, x, 3, **kw))
    assert len(said) == 1 and "The counterfactual search" in said[0], said
