"""Second final read of session 35 (git diff 8f382945), two wrong answers left by session 34's last mends.

- c92c0aac made GraphContext._reproduces compare the plain suffix's explained output on row 0 only: a forward hook on
  the model adding to another class's logit passed the check (row 0 explains class 0), and every row explained as
  class 1 read ``f0 - logit`` off by what the suffix never adds (unit 0:5's effect 2.553 against 0.053 with the same
  offset hooked on the last layer, which the suffix holds). The whole output row is compared now.
- 5267d802 checked the carriers' suffix on ``h[:1]``, a view of the factual activation: an in-place module at the
  head of the suffix (LeakyReLU(inplace=True)) overwrote row 0, whose effects came out 0.0097 off the full passes.
"""
import torch
from torch import nn

from lightning_causal.causal.scm.fairness import carrier_unit_effects
from lightning_causal.causal.structure.graph import causal_graph


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))


def test_a_hook_on_the_model_moving_another_class_is_no_suffix():
    x, target, offset = torch.randn(32, 4), torch.tensor([0, 1] * 16), torch.tensor([0.0, 5.0])
    on_model, on_last = _mlp(), _mlp()
    on_model.register_forward_hook(lambda m, i, o: o + offset)
    on_last[-1].register_forward_hook(lambda m, i, o: o + offset)  # inside the suffix: the same model
    graphs = [causal_graph(m.eval(), x, ["0", "2"], 3, target=target).to_dict() for m in (on_model, on_last)]
    assert graphs[0] == graphs[1]


def test_an_in_place_head_of_the_carriers_suffix_leaves_row_0_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.LeakyReLU(0.3, inplace=True), nn.Linear(6, 2)).eval()
    x = torch.randn(8, 3)
    fast = carrier_unit_effects(model, x, lambda v: v.flip(1), "0", use_suffix=True)
    full = carrier_unit_effects(model, x, lambda v: v.flip(1), "0", use_suffix=False)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-6)
