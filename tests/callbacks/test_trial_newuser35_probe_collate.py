"""Trial newuser35: the probe as the loader's own ``collate_fn`` makes it. A ``DataLoader`` over a
``TensorDataset`` was read by slicing its tensors, leaving out the loader's ``collate_fn``: a collate that
packs sequences, scales uint8 images or builds a sparse bag of words gave training one batch and the
audits another (the packing collate's probe was the raw ``(x, lengths, y)``). Sparse batches (a bag of
words collated with ``to_sparse()``, or passed as the probe) failed in torch's slicing (``aten::as_strided``
on the SparseCPU backend); they are read densely now, and a packed batch is refused naming the padded form."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.callbacks._probe import probe_from


def _words(n: int = 8, v: int = 20):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, v, generator=g) < 0.2).float(), torch.randint(0, 2, (n,), generator=g)


def test_a_tensor_dataset_is_read_through_the_loaders_collate_fn():
    x = torch.arange(12, dtype=torch.uint8).view(6, 2)
    y = torch.zeros(6, dtype=torch.long)

    def scaled(items):  # the loader's own collate: uint8 pixels to floats in [0, 1]
        return torch.stack([i[0] for i in items]).float() / 255, torch.stack([i[1] for i in items])

    probe = probe_from(DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=scaled), 5)
    torch.testing.assert_close(probe.inputs, x[:5].float() / 255)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_a_sparse_bag_of_words_is_read_densely(layout):
    x, y = _words()

    def sparse(items):
        batch = torch.stack([i[0] for i in items])
        return batch.to_sparse() if layout == "coo" else batch.to_sparse_csr(), torch.stack([i[1] for i in items])

    for source in (DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=sparse), sparse(list(zip(x, y)))):
        probe = probe_from(source, 5)
        assert probe.inputs.layout == torch.strided
        torch.testing.assert_close(probe.inputs, x[:5])


def test_audit_model_of_a_sparse_bag_of_words_gives_each_words_removal_effect():
    x, y = _words()
    torch.manual_seed(0)
    model = nn.Linear(20, 2)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=lambda it: (torch.stack([i[0] for i in it]).to_sparse(),
                                                                                  torch.stack([i[1] for i in it])))
    (result,) = audit_model(model, InputEffectAudit(target=1, ace_values=None), loader, probe_size=8)
    effects = x * model.weight[1].detach()  # linear: removing word w drops the logit by its weight
    assert result.scalars["mean_abs_effect"] == pytest.approx(float(effects.abs().mean()), rel=1e-5)


def test_a_packed_batch_is_refused_naming_the_padded_form():
    x, lengths, y = torch.randn(6, 4, 3), torch.tensor([4, 2, 3, 1, 4, 2]), torch.zeros(6, dtype=torch.long)

    def packed(items):
        xs, ls = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
        return pack_padded_sequence(xs, ls, batch_first=True, enforce_sorted=False), torch.stack([i[2] for i in items])

    for source in (DataLoader(TensorDataset(x, lengths, y), batch_size=3, collate_fn=packed), packed(list(zip(x, lengths, y)))):
        with pytest.raises(MisconfigurationException, match=r"got a PackedSequence.*pad_sequence.*collate_fn that pads"):
            probe_from(source, 6)
