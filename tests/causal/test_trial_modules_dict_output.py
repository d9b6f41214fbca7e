"""A block that returns a plain dict (``{"h": h, "aux": loss}``): unit_effects on it said "Expected
module 'blk' to be called by the forward pass and to return a tensor", as for a module that never
ran. It now says that the module ran and returned a dict, and names the ways out; the suggested
site, the input of the module that reads the tensor, equals brute force."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 5)

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        return {"h": h, "aux": h.pow(2).mean()}


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.blk, self.out = nn.Linear(4, 5), _Block(), nn.Linear(5, 3)

    def forward(self, x):
        return self.out(self.blk(self.a(x))["h"])


@pytest.mark.parametrize("use_suffix", [True, False])
def test_a_block_returning_a_dict_is_refused_saying_so(use_suffix):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"'blk'.*it ran but returned dict, not a tensor.*'<module>:input'"):
        unit_effects(_Net().eval(), torch.randn(4, 4), "blk", use_suffix=use_suffix)


def test_the_suggested_site_the_readers_input_equals_brute_force():
    torch.manual_seed(0)
    model, x = _Net().double().eval(), torch.randn(6, 4, dtype=torch.float64)
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        cols = []
        for u in range(5):
            def hook(_m, _i, out, u=u):
                h = out["h"].clone()
                h[:, u] = 0.0
                return {"h": h, "aux": out["aux"]}
            handle = model.blk.register_forward_hook(hook)
            cols.append((clean.gather(1, t) - model(x).gather(1, t))[:, 0])
            handle.remove()
    torch.testing.assert_close(unit_effects(model, x, "out:input"), torch.stack(cols, 1), rtol=0, atol=1e-12)
