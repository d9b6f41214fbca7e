"""Trial (inplace): causal graphs of a float64 model against a hand-written hook loop."""

import torch
from torch import nn

from lightning_causal.causal import causal_graph


class SqueezeExcite(nn.Module):
    """conv -> gate = sigmoid(fc2(relu(fc1(pool(conv))))) -> conv * gate: the gate paths are weak."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc1, self.fc2, self.head = nn.Linear(3, 2), nn.Linear(2, 3), nn.Linear(3, 2)

    def forward(self, x):
        y = self.conv(x)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3))))))
        return self.head((y * gate[:, :, None, None]).mean((2, 3)))


def _run(model, x, sets):
    """Logits with `sets[layer](output) -> output` applied by forward hooks, and each layer's output."""
    seen, handles = {}, []
    for name, module in model.named_children():
        def hook(_m, _i, out, name=name):
            out = sets[name](out.clone()) if name in sets else out
            seen[name] = out.clone()
            return out
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            return model(x), seen
    finally:
        for h in handles:
            h.remove()


def _set_unit(u, value):
    def apply(out):
        out[:, u] = value
        return out
    return apply


def test_float64_graph_keeps_path_effects_below_a_float32_round_off():
    # ROUND_OFF = 1e-5 of the layer's largest activation / of E|f_t| counted as float round-off in
    # float64 too: per-sample path effects of the weak gate paths were zeroed, so mean edge effects
    # were off by up to 40% (6.7e-7 for 1.1e-6) and node effects by 1e-7, in a model exact to 1e-16
    model = SqueezeExcite().double().eval()
    with torch.no_grad():
        for p, scale in zip(model.parameters(), (1.0, 0.1, 0.3, 0.1, 0.05, 0.1, 1.0, 0.1)):
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=torch.float64) * scale)
    x = torch.randn(8, 2, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    layers = ["conv", "fc1", "fc2"]
    g = causal_graph(model, x, layers, top_k=None, alpha=1.0, min_share=0.0, correction="none", alternative="two-sided",
                     baseline="zero", target=0)
    out0, clean = _run(model, x, {})
    f0 = out0[:, 0]
    node, edge = {}, {}
    for a, src in enumerate(layers):
        for i in range(clean[src].shape[1]):
            node[f"{src}:{i}"] = (f0 - _run(model, x, {src: _set_unit(i, 0.0)})[0][:, 0]).mean()
            clamps = {later: (lambda out, v=clean[later]: v.clone()) for later in layers[a + 1:]}
            edge[f"{src}:{i}", "output:0"] = (f0 - _run(model, x, {src: _set_unit(i, 0.0), **clamps})[0][:, 0]).mean()
            for c in range(a + 1, len(layers)):
                between = {m: (lambda out, v=clean[m]: v.clone()) for m in layers[a + 1:c]}
                moved = _run(model, x, {src: _set_unit(i, 0.0), **between})[1][layers[c]]
                for j in range(clean[layers[c]].shape[1]):
                    patched = _run(model, x, {layers[c]: _set_unit(j, moved[:, j])})[0][:, 0]
                    edge[f"{src}:{i}", f"{layers[c]}:{j}"] = (f0 - patched).mean()
    for nid, st in g.node_stats.items():
        if not nid.startswith("output"):
            assert abs(st["effect"] - float(node[nid])) < 1e-12, nid
    got = {(s, t): st["effect"] for (s, t, _), st in zip(g.edges, g.edge_stats)}
    weak = [k for k, v in edge.items() if 0 < abs(float(v)) < 1e-5]
    assert weak  # the gate's paths are weak: the ones a float32 round-off dropped or clipped
    for key, value in edge.items():
        if abs(float(value)) > 1e-13:
            assert key in got, key
            assert abs(got[key] - float(value)) <= 1e-12 + 1e-9 * abs(float(value)), (key, got[key], float(value))
