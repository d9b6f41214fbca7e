"""explained_target, the one start of the seven estimators (resolve, warn of a padded target, gather, refuse non-finite
samples): counterfactual_explanation(target_class=...) is told that target_class names the padded columns, never the
words of target=None, even where they are each sample's largest output; UnitImportanceAudit on two layers says it once
and cuts the probe once (not per layer)."""
import warnings

import torch
from torch import nn

from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import counterfactual_explanation
from lightning_causal.causal.engine import padded_reads


class Ranker(nn.Module):  # one score per item [N, L, 2] -> [N, L], padded items left unmasked (score 0, the largest)
    def __init__(self):
        super().__init__()
        self.h, self.g, self.out = nn.Linear(2, 4), nn.Linear(4, 4), nn.Linear(4, 1)
        with torch.no_grad():
            for m in (self.h, self.g, self.out):
                m.weight.fill_(1.0)
                m.bias.zero_()

    def forward(self, x, attention_mask):
        return self.out(self.g(self.h(x))).squeeze(-1)


def _lists():
    mask = (torch.arange(4)[None] < torch.tensor([4, 2, 3, 4])[:, None]).long()
    return -torch.arange(1, 33, dtype=torch.float).view(4, 4, 2) / 10 * mask[..., None], mask


def _padding_warnings(caught):
    return [str(w.message) for w in caught if "mark as padding" in str(w.message)]


def test_target_class_is_named_even_where_it_is_the_largest_output():
    x, mask = _lists()
    model = Ranker().eval()
    target = model(x, mask).argmax(1)  # the padded item in samples 1 and 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counterfactual_explanation(model, x, target, additional_forward_args={"attention_mask": mask})
    said = _padding_warnings(caught)
    assert len(said) == 1 and "`target_class=` names them" in said[0] and "`target=None` explains" not in said[0]


def test_unit_importance_on_two_layers_warns_once_and_cuts_once(monkeypatch):
    x, mask = _lists()
    cuts = []
    follows = padded_reads._follows_positions
    monkeypatch.setattr(padded_reads, "_follows_positions", lambda *a, **k: cuts.append(1) or follows(*a, **k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        UnitImportanceAudit(["h", "g"], unit_dim=-1).run(Ranker().eval(), Probe(x, additional_forward_args={"attention_mask": mask}))
    assert len(_padding_warnings(caught)) == 1 and len(cuts) == 1


def test_counterfactual_audit_says_how_it_chose_the_padded_columns():
    from lightning_causal.audits import CounterfactualAudit

    x, mask = _lists()
    probe = Probe(x, additional_forward_args={"attention_mask": mask})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CounterfactualAudit(towards="runner_up", max_samples=4).run(Ranker().eval(), probe)
    said = _padding_warnings(caught)
    # padded items score 0, real ones below: sample 1 (2 items) has its two padded items first and second
    assert said and all(s.startswith("CounterfactualAudit") and 'towards="runner_up"' in s for s in said)
    assert not any("`target_class=` names them" in s for s in said)
