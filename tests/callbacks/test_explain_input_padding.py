"""CausalAuditCallback(explain=...) on a model whose padding mask is passed positionally
(``forward(self, meta, x, attention_mask)``): the explained sequence's padded steps get effect 0, as with the mask
as a keyword and as without ``explain``. Before, the audits named the forward arguments by the wrapper's
signature (``ChosenInput.forward(x, *args)``), found no ``attention_mask`` and intervened on the padded steps."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal.engine.ablation import padding_arguments
from lightning_causal.causal.engine.chosen_input import ChosenInput, chosen_input, model_call
from tests.helpers.lightning import quick_trainer

N, T = 8, 5


class MetaSeq(pl.LightningModule):
    """``forward(self, meta [N, 3], x [N, T, 2], attention_mask [N, T])``: the mean of the real steps, and a little
    of every step's sum (so that the padded steps are read, and intervening on them shows)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 2)
        self.double()

    def forward(self, meta, x, attention_mask):
        w = attention_mask.unsqueeze(-1).to(x.dtype)
        return self.a(meta) + self.b((x * w).sum(1) / w.sum(1) + 0.5 * x.sum(1))

    def training_step(self, batch, batch_idx):
        (meta, x, mask), y = batch
        return nn.functional.cross_entropy(self(meta, x, mask), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # the weights stay those the reference below uses


class Data(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.meta = torch.randn(N, 3, generator=g, dtype=torch.float64)
        self.x = torch.randn(N, T, 2, generator=g, dtype=torch.float64)
        self.mask = (torch.arange(T)[None] < torch.tensor([2, 5, 3, 1, 4, 5, 2, 3])[:, None]).long()
        self.y = torch.arange(N) % 2

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        return (self.meta[i], self.x[i], self.mask[i]), self.y[i]


def effects(root, unpack_batch=None) -> torch.Tensor:
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None, feature_mask=torch.arange(T).view(1, T, 1))],
                             probe_size=N, report_dir=None, explain="x", unpack_batch=unpack_batch)
    quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0, default_root_dir=root, logger=False).fit(
        MetaSeq(), DataLoader(Data(), batch_size=4))
    effect = cb.last_results["input_effect"].maps["effect"]  # [N, T, 2]: a step's two features share its group
    assert torch.equal(effect[..., 0], effect[..., 1])
    return effect[..., 0]


def test_a_positional_mask_marks_the_padded_steps_of_the_explained_input(tmp_path):
    positional = effects(tmp_path / "positional", lambda b: ((b[0][0], b[0][1]), b[1], (b[0][2],)))
    keyword = effects(tmp_path / "keyword", lambda b: ((b[0][0], b[0][1]), b[1], {"attention_mask": b[0][2]}))
    as_input = effects(tmp_path / "input")  # the mask a third input of the probe: a positional argument of the wrapper too
    data, model = Data(), MetaSeq().eval()
    with torch.no_grad():  # f_t(x) - f_t(x | do(x_t := 0)) at the real steps, t the predicted class; 0 at the padded ones
        out = model(data.meta, data.x, data.mask)
        c = out.argmax(1, keepdim=True)
        brute = torch.stack([out.gather(1, c)[:, 0] - model(data.meta, data.x.index_fill(1, torch.tensor([t]), 0.0), data.mask)
                             .gather(1, c)[:, 0] for t in range(T)], 1)
    padded = data.mask == 0
    assert bool((brute[padded] != 0).all())  # the model reads the padded steps: intervening there would show
    torch.testing.assert_close(keyword, brute.masked_fill(padded, 0.0), rtol=0, atol=1e-12)
    torch.testing.assert_close(positional, keyword, rtol=0, atol=0)
    torch.testing.assert_close(as_input, keyword, rtol=0, atol=0)


def test_padding_arguments_name_a_wrappers_arguments_by_its_models_forward():
    model, mask = MetaSeq(), torch.ones(2, T, dtype=torch.long)
    meta, x = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, T, 2, dtype=torch.float64)
    wrapper, _, args = chosen_input(model, (meta, x), 1, (mask,))
    assert isinstance(wrapper, ChosenInput) and args[1] is mask
    named = padding_arguments(wrapper, args)
    assert list(named) == ["attention_mask"] and named["attention_mask"] is mask
    called, call = model_call(wrapper, (x, *args))
    assert called is model and [v is w for v, w in zip(call, (meta, x, mask))] == [True] * 3
    assert model_call(model, (x, meta)) == (model, (x, meta))  # any other module: the call as it is
