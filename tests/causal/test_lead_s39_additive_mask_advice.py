"""Final read B of this session's padded-graph commits. (1) The padding warnings advise a wrapper averaging over the real
positions, `m = attention_mask[..., None]`, and a `masked_fill(attention_mask == 0, ...)`: since e1760327 they are also
given for an additive mask (0 at the real nodes, -1e9 at the padding), where that `m` averages the PADDED nodes, silently
wrong for a user taking the advice; the advice now names the additive mask's real positions, `attention_mask == 0`, and
taken as written it gives the mean over the real nodes. (2) The warnings' padding read refused a float `attention_mask`
holding a bias (ALiBi-like 0, -0.25, ...), so an estimator that reads no padding, UnitImportanceAudit over features,
was refused where it ran before: the warnings skip a mask whose padding cannot be told, and the estimators that read
padding still refuse it in their words."""

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import input_effects
from tests.causal.test_trial_newuser94_mean_over_padding import _GPS, _graphs


class _AdditiveGPS(nn.Module):
    """The GPS layer given an additive mask: 0 at the real nodes, -1e9 at the padding."""

    def __init__(self):
        super().__init__()
        self.gps = _GPS()

    def forward(self, x, adj, attention_mask):
        return self.gps(x, adj, attention_mask == 0)


def test_the_mean_advised_for_an_additive_mask_is_the_mean_over_the_real_nodes():
    x, args = _graphs()
    keep = args["attention_mask"]
    additive = torch.zeros(keep.shape).masked_fill(~keep, -1e9)
    model = _AdditiveGPS().eval()
    fm = torch.arange(5)[:, None].expand(1, 5, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(model, x, fm, target=1, output=lambda out: out.mean(1),
                      additional_forward_args={"adj": args["adj"], "attention_mask": additive})
    said = [str(w.message) for w in caught if "(out * m).sum(1) / m.sum(1)" in str(w.message)]
    assert len(said) == 1
    advised = re.search(r"additive mask, 0 at the real positions and -1e9 or -inf at the padding: `m = (.*?)`", said[0])
    m = eval(advised.group(1), {"attention_mask": additive, "out": torch.zeros(1)})  # noqa: S307
    out = model(x, args["adj"], additive)
    real = torch.stack([out[i, keep[i]].mean(0) for i in range(len(x))])
    assert torch.allclose((out * m).sum(1) / m.sum(1), real)


def test_the_padded_target_advice_names_the_additive_masks_padding():
    from lightning_causal.causal.engine.padded_reads import PADDED_TARGET_FIX

    assert "additive mask" in PADDED_TARGET_FIX and "`attention_mask < 0`, in place of `attention_mask == 0`" in PADDED_TARGET_FIX


class _Biased(nn.Module):  # a relative-position bias passed as attention_mask: no padding, values 0, -0.25, ...
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head = nn.Linear(3, 8), nn.Linear(8, 2)

    def forward(self, x, attention_mask):
        h = self.inp(x)
        w = (h @ h.transpose(1, 2) + attention_mask[:, None, :]).softmax(-1)
        return self.head((w @ h).mean(1))


def _bias_probe():
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    return Probe(x, additional_forward_args={"attention_mask": -torch.arange(5.0)[None].expand(4, 5) / 4})


def test_feature_units_run_beside_a_bias_mask_position_units_refused_in_words():
    r = UnitImportanceAudit(["inp"], unit_dim=-1, target=1).run(_Biased().eval(), _bias_probe())
    assert torch.isfinite(r.vectors["importance/inp"]).all() and r.vectors["importance/inp"].shape == (8,)
    with pytest.raises(ValueError, match=r"argument `attention_mask` to be a keep mask .* cannot be told"):
        UnitImportanceAudit(["inp"], unit_dim=1, target=1).run(_Biased().eval(), _bias_probe())
