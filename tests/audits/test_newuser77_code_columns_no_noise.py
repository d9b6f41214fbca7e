"""The stability measures (``CausalGraphAudit``'s ``stability_noise``, ``CaptumBaseline``'s ``stability``) add Gaussian
noise of a tenth of each column's spread; a category code kept in a float column and cast inside the model
(``nn.Embedding(x[:, j].long())``, an FT-Transformer fed one float table) was noised too, and ``.long()`` ran the noisy
value as another category (occupation 3 + 0.4 noise -> 3, 3 - 0.2 -> 2): the stability measured the explanation under
category swaps, in silence. The codes now keep their values there, and a note names the columns."""

import torch
from torch import nn

from lightning_causal import CaptumBaseline, CausalGraphAudit, Probe
from lightning_causal.causal.structure.graph import graph_stability


class CensusNet(nn.Module):  # age, hours (standardised), then occupation (6 levels) and sex (2) as float codes
    def __init__(self):
        super().__init__()
        self.occupation, self.sex = nn.Embedding(6, 3), nn.Embedding(2, 2)
        self.hidden = nn.Sequential(nn.Linear(7, 12), nn.Tanh())
        self.out = nn.Linear(12, 2)

    def forward(self, x):
        return self.out(self.hidden(torch.cat([x[:, :2], self.occupation(x[:, 2].long()), self.sex(x[:, 3].long())], 1)))


def census(n=96):
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(n, 2, generator=g), torch.randint(0, 6, (n, 1), generator=g).float(),
                      torch.randint(0, 2, (n, 1), generator=g).float()], 1)


def seen_codes(model):  # every value of the code columns the model is run on
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, 2:].detach().clone()))
    return seen, handle


def test_graph_stability_noise_leaves_codes_whole():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()
    seen, handle = seen_codes(model)
    try:
        result = CausalGraphAudit(["hidden.1"], top_k=4, stability_resamples=1).run(model, Probe(x))
    finally:
        handle.remove()
    codes = torch.cat(seen)
    assert bool((codes == codes.round()).all()), "a category code was run with Gaussian noise"
    assert 0.0 <= result.scalars["stability_noise"] <= 1.0  # the numeric columns are still jittered
    assert any("column 2, column 3" in n and "category" in n for n in result.meta["notes"])


def test_graph_stability_of_a_model_of_codes_alone_has_no_noisy_graph():
    class CodesOnly(CensusNet):  # the numeric columns reach nothing: only the codes vary the model's input to it
        def forward(self, x):
            return super().forward(torch.cat([torch.zeros_like(x[:, :2]), x[:, 2:]], 1))

    torch.manual_seed(0)
    model = CodesOnly().eval()
    x = census()
    x[:, :2] = 0.0  # the only varying columns are codes: no noise to add, NaN as for token ids
    stab = graph_stability(model, x, ["hidden.1"], 4, resamples=1)
    assert stab["noise_jaccard"] != stab["noise_jaccard"]


def test_captum_baseline_stability_leaves_codes_whole():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()
    seen, handle = seen_codes(model)
    try:
        result = CaptumBaseline(("Saliency",)).run(model, Probe(x))  # Saliency: no path between baseline and x
    finally:
        handle.remove()
    codes = torch.cat(seen)  # the gradient-path check's central difference steps by 1e-3 (no noise of the codes)
    assert float((codes - codes.round()).abs().max()) < 0.01, "a category code was run with Gaussian noise"
    assert 0.0 < result.scalars["stability"] <= 1.0
    assert any("column 2, column 3" in n for n in result.meta["notes"])


def test_noise_tunnel_on_codes_is_warned_and_its_failed_lookup_named():
    import pytest

    from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

    torch.manual_seed(0)
    x = census()
    with pytest.raises(ValueError, match=r"NoiseTunnel-Saliency failed .* category codes in column 2, column 3"):
        with pytest.warns(ProbeContentsWarning, match=r"NoiseTunnel-Saliency add\(s\) .* column 2, column 3"):
            CaptumBaseline(("NoiseTunnel(Saliency)",)).run(CensusNet().eval(), Probe(x))  # code 5 + noise: no code 6

    class Roomy(CensusNet):  # embeddings with room past the codes: the noisy codes run, as other categories
        def __init__(self):
            super().__init__()
            self.occupation, self.sex = nn.Embedding(64, 3), nn.Embedding(64, 2)

    with pytest.warns(ProbeContentsWarning, match="its maps average gradients at other categories"):
        result = CaptumBaseline([("NoiseTunnel(Saliency)", {"stdevs": 0.2})]).run(Roomy().eval(), Probe(x))  # above -1
    assert any("NoiseTunnel-Saliency add(s)" in n for n in result.meta["notes"])


def test_one_code_column_is_named_in_the_singular():
    class OneCode(nn.Module):
        def __init__(self):
            super().__init__()
            self.occupation = nn.Embedding(6, 2)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(torch.cat([x[:, :2], self.occupation(x[:, 2].long())], 1))

    torch.manual_seed(0)
    result = CaptumBaseline(("Saliency",)).run(OneCode().eval(), Probe(census()[:, :3]))
    assert any(n.startswith("stability leaves column 2 as it is: category codes") for n in result.meta["notes"])
