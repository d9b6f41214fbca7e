"""Review of a06444fe/1c5e06ca: a layer is measured on the 'shared' path where two probe samples alone and together give
it the same rows. A set model pooling its batch (a context row made from the mean of the batch's group descriptors)
gives those rows too where the two samples compared share their descriptor, yet its rows depend on the other samples:
unit_effects measured it silently, each chunk of the probe on its own rows (0.108 off the whole-probe loop's 0.401 with
max_batch_size=2), and UnitImportanceAudit's set-up let it through. The passes of the probe are now compared with the
two samples' rows and such a layer is refused; the text tower of a CLIP-like model of another shape than the helper's
(a transformer layer over 5 prompts of 6 tokens) still equals a hand 'set every prompt's unit, rerun' loop."""

import pytest
import torch
from torch import nn

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.interventions import SetTo

BATCH_ROWS = "Expected layer 'ctx' to hold the same rows in every pass"


class BatchContext(nn.Module):
    """A set model: context rows [rows, 4] from the mean of the batch's group descriptors g, read by every sample."""

    def __init__(self, rows):
        super().__init__()
        torch.manual_seed(0)
        self.head, self.ctx, self.q = nn.Linear(4, 3), nn.Linear(2, 4), nn.Parameter(torch.randn(rows, 2))

    def forward(self, x, g):
        return self.head(x * self.ctx(g.mean(0, keepdim=True) + self.q).mean(0))


def batch_probe():
    gen = torch.Generator().manual_seed(1)
    x, g = torch.randn(8, 4, generator=gen, dtype=torch.float64), torch.randn(8, 2, generator=gen, dtype=torch.float64)
    g[1] = g[0]  # the two samples compared give the context the same input; the six others do not
    return x, g


@pytest.mark.parametrize("max_batch_size", [None, 2])
@pytest.mark.parametrize("rows", [1, 3])  # one row (the prefix cache refuses it), rows of their own (a fold's check)
def test_rows_that_depend_on_the_batch_are_refused_not_measured_per_chunk(rows, max_batch_size):
    model, (x, g) = BatchContext(rows).double().eval(), batch_probe()
    with pytest.raises(ValueError, match=BATCH_ROWS + r".*depend on the samples of the batch.*`intervene`"):
        unit_effects(model, (x, g), "ctx", unit_dim=-1, target=0, max_batch_size=max_batch_size)
    assert not model.ctx._forward_hooks and not model._forward_hooks  # no hook left by the refusal


@pytest.mark.parametrize("rows", [1, 3])
def test_the_audit_refuses_them_at_set_up(rows):
    model, (x, g) = BatchContext(rows).double().eval(), batch_probe()
    with pytest.raises(ValueError, match=BATCH_ROWS + r".*the whole probe \(8 samples\)"):
        UnitImportanceAudit(["ctx"], unit_dim=-1, target=0).validate(model, Probe((x, g)))


class Clip(nn.Module):
    """An image MLP and a text transformer layer over 5 prompts of 6 tokens (a buffer): logits = 10 cos(image, text)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.GELU(), nn.Linear(16, 8))
        self.tok, self.pos = nn.Embedding(20, 8), nn.Parameter(torch.randn(6, 8) / 10)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.ln, self.txt = nn.LayerNorm(8), nn.Linear(8, 8)
        self.register_buffer("prompts", torch.randint(0, 20, (5, 6)))

    def forward(self, x):
        text = self.txt(self.ln(self.enc(self.tok(self.prompts) + self.pos).mean(1)))
        return 10 * nn.functional.normalize(self.img(x), dim=-1) @ nn.functional.normalize(text, dim=-1).T


def hand(model, x, layer, values, target):
    """Each unit u of `layer` set to values[u] in every prompt's row, rerun: the explained logit's drop."""
    rows = torch.arange(len(x))
    with torch.no_grad():
        clean, cols = model(x)[rows, target], []
        for u in range(len(values)):
            def hook(_m, _i, out, u=u):
                out = out.clone()
                out[..., u] = values[u]
                return out

            handle = dict(model.named_modules())[layer].register_forward_hook(hook)
            try:
                cols.append(clean - model(x)[rows, target])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


@pytest.mark.parametrize("layer", ["txt", "enc.linear2", "tok"])  # [5, 8], [5, 6, 8] inside the layer, the embedding
def test_a_clip_text_tower_equals_the_hand_loop(layer):
    model = Clip().double().eval()
    x, target = torch.randn(7, 3, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    values = torch.linspace(-1, 1, 8, dtype=torch.float64)
    got, info = unit_effects(model, x, layer, intervention=SetTo(values), unit_dim=-1, target=target, max_batch_size=3,
                             return_info=True)
    torch.testing.assert_close(got, hand(model, x, layer, values, target), rtol=0, atol=1e-12)
    assert info.path == "shared" and got.abs().max() > 1e-2


class Wrapped(nn.Module):
    """The text projection under a name as long as a wrapped Hugging Face CLIP's layers
    ('model.text_model.encoder.layers.11.mlp.fc2' is 42 characters)."""

    def __init__(self):
        super().__init__()
        self.clip = Clip()
        self.model = nn.ModuleDict({"text_model": nn.ModuleDict({"encoder_final_projection_layer": nn.Linear(8, 8)})})

    def forward(self, x):
        c = self.clip
        text = self.model["text_model"]["encoder_final_projection_layer"](c.ln(c.enc(c.tok(c.prompts) + c.pos).mean(1)))
        return 10 * nn.functional.normalize(c.img(x), dim=-1) @ nn.functional.normalize(text, dim=-1).T


def test_the_text_card_shows_the_note_of_a_long_layer_name_whole():
    from lightning_causal.reporting.summary import markdown_summary

    model, layer = Wrapped().double().eval(), "model.text_model.encoder_final_projection_layer"
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    result = UnitImportanceAudit([layer], unit_dim=-1, target=0).run(model, Probe(x))
    note = next(n for n in result.meta["notes"] if "every sample shares" in n)
    assert note.endswith("one pass per unit") and f": {note}" in markdown_summary(0, [result])
