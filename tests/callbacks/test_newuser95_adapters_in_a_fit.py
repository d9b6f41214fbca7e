"""A new user's parameter-efficient fine-tuning in a Lightning fit (newuser95): a frozen token classifier with a
LoRA layer that merges in its forward by ``self.training`` (Lightning puts modes back by the flag, never calling
``train()``: a layer merging in ``train(False)`` stays merged through the next training steps), a bottleneck adapter
and P learnable prompt embeddings prepended inside ``forward``. The callback's audits left the LoRA layer's update
merged into the frozen weight beside a flag saying it was not (06a3f674), so the fits with and without the callback
parted after the first audit; the prompt positions are no input: token effects are ``[N, T]``, the tokens' own."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.causal import input_effects
from tests.causal.test_newuser95_lora_merged_in_forward import LazyLoRA as _InForward

V, T, P, D, KEY, MASK = 12, 6, 2, 8, 3, 1


class LazyLoRA(_InForward):
    """The LoRA of tests/causal/test_newuser95_lora_merged_in_forward.py (its forward merging by ``self.training``),
    wrapping a given layer, which trains with the model."""

    def __init__(self, base: nn.Linear, r: int = 2) -> None:
        nn.Module.__init__(self)
        self.base, self.merged = base, False
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) * 0.3)
        self.lora_B = nn.Parameter(torch.randn(base.out_features, r) * 0.3)


class Adapter(nn.Module):  # Houlsby: y + up(relu(down(y)))
    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base, self.down, self.up = base, nn.Linear(D, 3), nn.Linear(3, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.up(torch.relu(self.down(y)))


class Prompted(pl.LightningModule):
    """Token ids [N, T] -> P prompts prepended -> mixer -> the first real token's state ([CLS]) -> 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.mix = LazyLoRA(nn.Linear(D, D))
        self.ff = Adapter(nn.Linear(D, D))
        self.head = nn.Linear(D, 2)
        for p in [*self.embed.parameters(), *self.mix.base.parameters(), *self.ff.base.parameters()]:
            p.requires_grad_(False)  # the base frozen; the head, LoRA, adapter and prompts train
        self.prompt = nn.Parameter(torch.randn(P, D) * 0.1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.prompt.expand(ids.shape[0], -1, -1), self.embed(ids)], 1)  # [N, P + T, D]
        h = torch.tanh(self.mix(h))
        h = h + h.mean(1, keepdim=True)  # every position sees the others
        h = self.ff(h)
        return self.head(h[:, P])

    def training_step(self, batch, _):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, V, (n, T), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    ids[y == 1, torch.randint(0, T, (int((y == 1).sum()),), generator=g)] = KEY  # the keyword sets the class
    return ids, y


def _fit(tmp_path, audits: bool) -> dict[str, torch.Tensor]:
    pl.seed_everything(0)
    model = Prompted()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_data(32, 1)), batch_size=8)
    callbacks = [CausalAuditCallback([InputEffectAudit(baseline=MASK, ace_values=None),
                                      UnitImportanceAudit(["ff.down", "mix"], unit_dim=-1)],
                                     probe=_data(8, 2), every_n_epochs=1)] if audits else []
    pl.Trainer(max_epochs=3, logger=False, callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0).fit(model, data)
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == frozen
    assert all(p.grad is None for n, p in model.named_parameters() if n in frozen)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_fit_with_adapters_and_prompts_is_bit_identical_with_and_without_audits(tmp_path):
    plain, audited = _fit(tmp_path / "plain", False), _fit(tmp_path / "audited", True)
    assert plain.keys() == audited.keys()
    assert [k for k in plain if not torch.equal(plain[k], audited[k])] == []


def test_token_effects_of_a_prompted_model_are_the_tokens_own():
    """P prompt positions are prepended inside forward: the effects are [N, T], column t the token at t, equal to the
    set-rerun-difference loop, and the keyword holds the largest |effect| among the tokens other than the read one."""
    torch.manual_seed(0)
    model = Prompted().eval()
    nn.init.normal_(model.head.weight)
    with torch.no_grad():
        model.embed.weight[KEY] *= 6.0  # the keyword's embedding dominates the [CLS] state
    ids, _ = _data(6, 3)
    ids[:3, 2] = KEY
    effects = input_effects(model, ids, baseline=MASK, target=0)
    with torch.no_grad():
        base = model(ids)[:, 0]
        loop = torch.stack([base - model(ids.index_fill(1, torch.tensor([t]), MASK))[:, 0] for t in range(T)], 1)
    assert effects.shape == (6, T)
    torch.testing.assert_close(effects, loop, rtol=0, atol=1e-6)
    assert (effects[:3, 1:].abs().argmax(1) + 1).tolist() == [2, 2, 2]
