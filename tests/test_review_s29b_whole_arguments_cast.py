"""A weight passed as a forward argument beside a probe that is cut to ``probe_size`` (a ``Probe`` of 12 samples, a
weight of 4 rows, ``probe_size=4``) is passed whole: the cut probe's forward arguments are marked so
(forward_args.mark_whole, 85c6b00a). audit_model's cast of the probe to the weights' dtype and the callback's precision
plugin (``"64-true"``) rebuilt the argument tuple with ``apply_to_collection``, a plain tuple without the marks: the
weight of 4 rows was read as one row per sample and the 2 samples of the dry run gathered 2 of its rows (audit_model:
"Expected the model to treat samples independently"; the fit: "The size of tensor a (5) must match ..."). The marks
are kept (forward_args.marks_kept): the results equal those of the same model holding the weight."""

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe


class _Net(pl.LightningModule):
    """``tanh(x W^T)`` summed over pairs of units, plus a bias ``p``: the weight ``W [4, 5]`` comes as a forward
    argument, or is held (``held``: the hand call ``model(x, W)``)."""

    def __init__(self, held: torch.Tensor | None = None) -> None:
        super().__init__()
        self.p, self.held = nn.Parameter(torch.zeros(2)), held

    def forward(self, x, w=None):
        w = self.held if w is None else w
        return torch.tanh(F.linear(x, w)).reshape(x.shape[0], -1, 2).sum(-1) + self.p

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x, _data()[1].to(x.dtype)), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 5, generator=g), torch.randn(4, 5, generator=g), torch.randint(0, 2, (12,), generator=g)


def _audit() -> InputEffectAudit:
    return InputEffectAudit(ace_values=None, target=0)


def test_audit_model_of_a_cut_probe_passes_the_weight_whole():
    x, w, _ = _data()
    given = audit_model(_Net(), [_audit()], Probe(x, additional_forward_args=(w,)), probe_size=4)[0]
    hand = audit_model(_Net(w), [_audit()], x, probe_size=4)[0]
    assert given.scalars == hand.scalars
    assert torch.equal(given.maps["effect"], hand.maps["effect"])


def test_a_64_true_fit_passes_the_weight_of_its_cut_probe_whole(tmp_path):
    x, w, y = _data()
    callback = CausalAuditCallback([_audit()], probe=Probe(x, additional_forward_args=(w,)), probe_size=4,
                                   report_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, precision="64-true", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, callbacks=[callback]).fit(net := _Net(), DataLoader(TensorDataset(x, y), batch_size=6))
    result = callback.last_results["input_effect"]
    net.held = w.double()  # the trained model holding the weight: the hand call
    hand = audit_model(net, [_audit()], x.double(), probe_size=4)[0]
    assert result.scalars == hand.scalars
    assert torch.equal(result.maps["effect"], hand.maps["effect"])
