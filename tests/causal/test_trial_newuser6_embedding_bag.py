"""A recommender's nn.EmbeddingBag (trial newuser6): flat ``indices`` with ``offsets`` have one row per
item, not per sample. The estimators and the callback refused them with a message about graph neural
networks ("nodes of graphs pooled per graph?", ``edge_index``) or about the labels' row count alone;
they now name the bag and the way that works, padded ids ``[N, K]`` with the bag's ``padding_idx``, whose
effects (``baseline=padding_idx``: the item removed from its bag) are checked against a brute-force loop."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects


class Bag(nn.Module):
    def __init__(self, padding_idx: int | None = 0) -> None:
        super().__init__()
        self.items = nn.EmbeddingBag(20, 4, mode="mean", padding_idx=padding_idx)
        self.head = nn.Linear(4, 1)

    def forward(self, ids, offsets=None):
        return self.head(self.items(ids, offsets))


def test_flat_bag_indices_are_refused_with_the_padded_way_not_the_graph_hint():
    torch.manual_seed(0)
    flat, offsets = torch.tensor([3, 5, 7, 2, 9]), torch.tensor([0, 2])
    with pytest.raises(ValueError, match="nn.EmbeddingBag 'items' reads with `offsets`") as err:
        input_effects(Bag(padding_idx=7), flat, baseline=0, additional_forward_args=(offsets,))
    assert "graph" not in str(err.value) and "padding_idx=7" in str(err.value) and "special_tokens=(7,)" in str(err.value)


def test_the_callback_names_the_bag_when_flat_indices_meet_one_label_per_sample(tmp_path):
    g = torch.Generator().manual_seed(0)
    flat, offsets, y = torch.randint(1, 20, (9,), generator=g), torch.tensor([0, 2, 5]), torch.tensor([0, 1, 1])

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Bag()

        def forward(self, ids, offsets):
            return self.net(ids, offsets)

        def training_step(self, batch, i):
            return F.binary_cross_entropy_with_logits(self(batch[0], batch[1])[:, 0], batch[2].float())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.1)

    callback = CausalAuditCallback([InputEffectAudit(baseline=0)], probe=(flat, offsets, y),
                                   unpack_batch=lambda b: (b[0], b[2], (b[1],)))
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_progress_bar=False, default_root_dir=tmp_path,
                         enable_checkpointing=False, enable_model_summary=False)
    with pytest.raises(MisconfigurationException, match=r"labels.*nn.EmbeddingBag reads with `offsets`.*ids \[N, K\]"):
        trainer.fit(Module(), [(flat, offsets, y)])


def test_padded_bags_remove_items_as_a_brute_force_loop_and_leave_padding_out_of_the_means():
    torch.manual_seed(0)
    model = Bag().eval()
    ids = torch.tensor([[3, 5, 0, 0], [7, 2, 9, 0], [4, 0, 0, 0]])
    with torch.no_grad():
        out = model(ids)[:, 0]
        brute = torch.stack([out - model(ids.masked_fill(torch.arange(4) == k, 0))[:, 0] for k in range(4)], 1)
    assert torch.allclose(input_effects(model, ids, baseline=0), brute, atol=1e-6)
    result = InputEffectAudit(baseline=0, special_tokens=(0,), ace_values=None).run(model, Probe(ids))
    real = torch.tensor([3, 2, 1, 0]).clamp_min(1)  # samples whose slot holds an item
    assert torch.allclose(result.vectors["mean_abs_effect"], brute.abs().sum(0) / real, atol=1e-6)
