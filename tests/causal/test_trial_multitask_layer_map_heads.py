"""Trial "multitask": the layer causal map of a model of several outputs (a dict of heads, a tuple
with an auxiliary head) explained at one output. Its default layers (every leaf layer with
parameters of a plain MLP) took the heads of the other outputs too, and drew them in its chain:
``body -> cls -> reg -> <output>`` for the ``cls`` head, whose logits ``reg`` never reaches. The
default layers now leave out the layers the explained output does not read; named ones are warned about."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.engine.forward import Forward


class Heads(nn.Module):
    """A shared body and three heads: class logits, a regression on another scale, an auxiliary head."""

    def __init__(self, kind: str = "dict") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.cls, self.reg, self.aux = nn.Linear(8, 3), nn.Linear(8, 1), nn.Linear(8, 3)
        self.kind = kind

    def forward(self, x):
        h = self.body(x)
        if self.kind == "dict":
            return {"cls": self.cls(h), "reg": 100.0 * self.reg(h), "aux": self.aux(h)}
        return self.cls(h), self.aux(h)


def _x(n: int = 12) -> torch.Tensor:
    return torch.randn(n, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


MASK = torch.tensor([[0, 0, 1, 1, 2, 2]])


@pytest.mark.parametrize(("kind", "output", "head"), [("dict", "cls", "cls"), ("dict", "reg", "reg"), ("tuple", 1, "aux")])
def test_the_default_layers_are_those_of_the_explained_head(kind, output, head):
    model = Heads(kind).double().eval()
    lm = layer_causal_map(model, _x(), MASK, output=output, threshold=1.0)
    assert lm.layers == ["body.0", "body.2", head]  # before: ['body.0', 'body.2', 'cls', 'reg', 'aux'] (tuple: 'cls', 'aux')
    assert [e[:2] for e in lm.edges] == [("<input>", "body.0"), ("body.0", "body.2"), ("body.2", head), (head, "<output>")]
    named = layer_causal_map(model, _x(), MASK, output=output, threshold=1.0, layers=["body.0", "body.2", head])
    assert lm.edges == named.edges and torch.equal(lm.response, named.response)


def test_the_output_node_holds_the_explained_heads_effects():
    """The map's <output> node: E_x |f_t(x) - f_t(x | do(x_g := 0))| of the cls head's predicted class, by hand."""
    model, x = Heads().double().eval(), _x()
    lm = layer_causal_map(model, x, MASK, output="cls", threshold=1.0)
    with torch.no_grad():
        out = model(x)["cls"]
        pred = out.argmax(1, keepdim=True)
        ref = []
        for g in range(3):
            xg = x.clone()
            xg[:, (MASK[0] == g)] = 0.0
            ref.append((out.gather(1, pred) - model(xg)["cls"].gather(1, pred)).abs().mean())
    torch.testing.assert_close(lm.group_effects["<output>"], torch.stack(ref), rtol=1e-10, atol=1e-12)


def test_named_layers_the_output_does_not_read_are_warned_about():
    model = Heads().double().eval()
    with pytest.warns(UserWarning, match=r"The layers \['reg'\] do not reach the explained output"):
        layer_causal_map(model, _x(), MASK, output="cls", layers=["body.0", "cls", "reg"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head's own layers: nothing to say
        layer_causal_map(model, _x(), MASK, output="reg", layers=["body.0", "reg"])


def test_off_output_path_leaves_no_hook_and_keeps_a_model_that_draws_noise():
    from lightning_causal.causal.structure.output_path import off_output_path  # new with the fix

    model = Heads().double().eval()
    with torch.no_grad():
        assert off_output_path(Forward(model, output="cls"), (_x(),), ["body.0", "cls", "reg", "aux"]) == ["reg", "aux"]
    assert all(not m._forward_hooks for m in model.modules())

    class Noisy(Heads):
        def forward(self, x):
            return super().forward(x + 0.01 * torch.randn_like(x))

    with torch.no_grad():  # two clean passes differ: no pass can tell, every layer is kept
        assert off_output_path(Forward(Noisy().double().eval(), output="cls"), (_x(),), ["body.0", "reg"]) == []


def test_a_scripted_model_is_still_refused_naming_torchscript():
    """The passes that find the heads off the output's path hook no TorchScript module (register_forward_hook
    refuses them): the map's own refusal, which names TorchScript and the way out, is what the user sees."""
    scripted = torch.jit.script(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval())
    with pytest.raises(ValueError, match="TorchScript module"):
        layer_causal_map(scripted, _x(), MASK)


def test_a_layer_whose_noise_breaks_the_pass_is_on_the_path():
    """A layer whose output becomes an index (an embedding's row): its noisy pass fails (IndexError), which
    says the noise reached the output's computation; the layer is kept, and no error escapes."""
    from lightning_causal.causal.structure.output_path import off_output_path  # new with the fix

    class Indexed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pick, self.emb, self.other = nn.Linear(6, 1), nn.Embedding(3, 3), nn.Linear(6, 2)
            with torch.no_grad():
                self.pick.weight.zero_()
                self.pick.bias.fill_(1.0)  # row 1 on clean passes

        def forward(self, x):
            return {"cls": self.emb(self.pick(x).round().long()[:, 0]), "aux": self.other(x)}

    with torch.no_grad():
        off = off_output_path(Forward(Indexed().double().eval(), output="cls"), (_x(),), ["pick", "emb", "other"])
    assert off == ["other"]


def test_an_expert_that_some_samples_only_read_stays_on_the_path():
    """A dense top-1 mixture: each expert runs on every row, multiplied by 0 where the gate routes elsewhere.
    An expert the first two samples do not use was dropped from the default layers (the passes read two rows)."""

    class Mixture(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.experts = nn.ModuleList([nn.Linear(6, 3), nn.Linear(6, 3)])

        def forward(self, x):
            route = (x[:, :1] > 0).to(x.dtype)  # expert 1 for samples whose first feature is positive
            return {"cls": (1 - route) * self.experts[0](x) + route * self.experts[1](x), "aux": x[:, :2]}

    x = _x()
    x[:2, 0] = -1.0  # the first two samples use expert 0 only
    assert bool((x[:, 0] > 0).any())
    lm = layer_causal_map(Mixture().double().eval(), x, MASK, output="cls", threshold=1.0)
    assert lm.layers == ["experts.0", "experts.1"]
